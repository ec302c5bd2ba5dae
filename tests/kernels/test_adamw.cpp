// adamw_step against a hand computation; gradient norm and clipping.
#include "check.hpp"

#include "cpu/adamw.hpp"
#include "cpu/bf16.hpp"

#include <omp.h>

#include <stdexcept>

using namespace mb::kernels::cpu;

TEST_CASE("adamw: two steps against the formula worked out in double") {
  const float lr = 0.01f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.1f;
  std::vector<float> p{0.5f, -1.0f, 2.0f, 0.0f}, m(4, 0.0f), v(4, 0.0f);
  const std::vector<float> g1{0.1f, -0.2f, 0.0f, 3.0f}, g2{-0.3f, -0.2f, 1.0f, 0.5f};
  std::vector<double> pd(p.begin(), p.end()), md(4, 0.0), vd(4, 0.0);
  for (int t = 1; t <= 2; ++t) {
    const auto& g = t == 1 ? g1 : g2;
    adamw_step(p.data(), nullptr, g.data(), m.data(), v.data(), p.size(), t, lr, b1, b2, eps, wd);
    for (int i = 0; i < 4; ++i) {
      md[i] = double{b1} * md[i] + (1.0 - double{b1}) * g[i];
      vd[i] = double{b2} * vd[i] + (1.0 - double{b2}) * g[i] * g[i];
      const double mhat = md[i] / (1.0 - std::pow(double{b1}, t));
      const double vhat = vd[i] / (1.0 - std::pow(double{b2}, t));
      pd[i] -= double{lr} * (mhat / (std::sqrt(vhat) + double{eps}) + double{wd} * pd[i]);
    }
    kt::check_close(m, md, 1e-6, 1e-9, "adamw m");
    kt::check_close(v, vd, 1e-5, 1e-12, "adamw v");
    kt::check_close(p, pd, 1e-6, 1e-7, "adamw params");
  }
  // Step 1 by hand for the first parameter: mhat = g, vhat = g², so the update is lr · sign(g)
  // (up to eps) plus decay: 0.5 - 0.01 · (1 + 0.1 · 0.5) = 0.4895; step 2 then moves it on.
  // The zero-gradient parameter (index 2) only decays in step 1: 2 - 0.01 · 0.1 · 2 = 1.998.
  std::vector<float> q{0.5f, 2.0f}, mq(2, 0.0f), vq(2, 0.0f), gq{0.1f, 0.0f};
  adamw_step(q.data(), nullptr, gq.data(), mq.data(), vq.data(), 2, 1, lr, b1, b2, eps, wd);
  CHECK(q[0] == doctest::Approx(0.4895).epsilon(1e-6));
  CHECK(q[1] == doctest::Approx(1.998).epsilon(1e-7));
}

TEST_CASE("adamw: many chunks agree with a single-element loop; t must be positive") {
  const std::size_t n = 100003;
  auto p = kt::random_floats(n, 1), g = kt::random_floats(n, 2);
  std::vector<float> m(n, 0.0f), v(n, 0.0f);
  auto p1 = p;
  std::vector<float> m1 = m, v1 = v;
  adamw_step(p.data(), nullptr, g.data(), m.data(), v.data(), n, 3, 1e-3f, 0.9f, 0.95f, 1e-8f,
             0.0f);
  for (std::size_t i = 0; i < n; ++i)
    adamw_step(&p1[i], nullptr, &g[i], &m1[i], &v1[i], 1, 3, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.0f);
  kt::check_close(p, p1, 1e-6, 1e-7, "adamw chunked params");
  CHECK_THROWS_AS(adamw_step(p.data(), nullptr, g.data(), m.data(), v.data(), n, 0, 1e-3f, 0.9f,
                             0.95f, 1e-8f, 0.0f),
                  std::invalid_argument);
}

TEST_CASE("gradient norm and clipping") {
  std::vector<float> g{3.0f, 4.0f};
  CHECK(grad_norm_squared(g.data(), 2) == 25.0);
  CHECK(clip_grad_norm(g.data(), 2, 10.0f) == 5.0f);  // below the limit: unchanged
  CHECK(g == std::vector<float>{3.0f, 4.0f});
  CHECK(clip_grad_norm(g.data(), 2, 1.0f) == 5.0f);  // returns the norm before clipping
  CHECK(g[0] == doctest::Approx(0.6f));
  CHECK(g[1] == doctest::Approx(0.8f));
  CHECK(std::sqrt(grad_norm_squared(g.data(), 2)) == doctest::Approx(1.0));

  const std::size_t n = 200001;
  auto big = kt::random_floats(n, 5);
  double want = 0.0;
  for (float x : big) want += static_cast<double>(x) * x;
  const double got = grad_norm_squared(big.data(), n);
  CHECK(got == doctest::Approx(want).epsilon(1e-12));
  const int saved = omp_get_max_threads();
  for (int threads : {1, 3}) {
    omp_set_num_threads(threads);
    CHECK(grad_norm_squared(big.data(), n) == got);  // bit-identical for any thread count
  }
  omp_set_num_threads(saved);
  auto scaled = big;
  scale_grads(scaled.data(), n, 0.5f);
  for (std::size_t i = 0; i < n; i += 997) CHECK(scaled[i] == big[i] * 0.5f);
}

TEST_CASE("adamw: the bf16 copy holds the rounded new parameters; the fp32 step is unchanged") {
  const std::size_t n = 100003;  // several chunks
  auto p = kt::random_floats(n, 11), g = kt::random_floats(n, 12);
  std::vector<float> m(n, 0.0f), v(n, 0.0f);
  auto p_plain = p, m_plain = m, v_plain = v;
  std::vector<std::uint16_t> copy(n, 0xABCD);
  for (long t = 1; t <= 2; ++t) {
    adamw_step(p.data(), copy.data(), g.data(), m.data(), v.data(), n, t, 1e-2f, 0.9f, 0.98f, 1e-8f,
               0.1f);
    adamw_step(p_plain.data(), nullptr, g.data(), m_plain.data(), v_plain.data(), n, t, 1e-2f, 0.9f,
               0.98f, 1e-8f, 0.1f);
  }
  CHECK(p == p_plain);
  CHECK(m == m_plain);
  CHECK(v == v_plain);
  std::size_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) bad += copy[i] != bf16_bits(p[i]);
  CHECK(bad == 0);
}
