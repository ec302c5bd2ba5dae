// layernorm_forward / layernorm_backward against a double reference and finite differences.
#include "check.hpp"

#include "cpu/layernorm.hpp"

#include <omp.h>

using namespace mb::kernels::cpu;

namespace {

template <class T>
std::vector<T> ref_layernorm(const std::vector<T>& x, const std::vector<T>& w,
                             const std::vector<T>& b, int N, int C, double eps,
                             std::vector<double>* mean = nullptr,
                             std::vector<double>* rstd = nullptr) {
  std::vector<T> out(x.size());
  for (int r = 0; r < N; ++r) {
    const std::size_t off = static_cast<std::size_t>(r) * C;
    double m = 0.0;
    for (int i = 0; i < C; ++i) m += static_cast<double>(x[off + i]);
    m /= C;
    double v = 0.0;
    for (int i = 0; i < C; ++i) {
      const double d = static_cast<double>(x[off + i]) - m;
      v += d * d;
    }
    const double s = 1.0 / std::sqrt(v / C + eps);
    for (int i = 0; i < C; ++i)
      out[off + i] =
          static_cast<T>((static_cast<double>(x[off + i]) - m) * s * static_cast<double>(w[i]) +
                         static_cast<double>(b[i]));
    if (mean) mean->push_back(m);
    if (rstd) rstd->push_back(s);
  }
  return out;
}

struct Case {
  int N, C;
  float offset;  // added to every input, to exercise the two-pass variance
};

void check_case(Case c, std::uint32_t seed) {
  const int N = c.N, C = c.C;
  const std::size_t n = static_cast<std::size_t>(N) * C;
  auto x = kt::random_floats(n, seed, c.offset - 1.0f, c.offset + 1.0f);
  auto w = kt::random_floats(C, seed + 1, 0.5f, 1.5f);
  auto b = kt::random_floats(C, seed + 2);
  std::vector<float> out(n), mean(N), rstd(N);
  layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C);

  std::vector<double> want_mean, want_rstd;
  auto xd = kt::to_double(x), wd = kt::to_double(w), bd = kt::to_double(b);
  auto want = ref_layernorm(xd, wd, bd, N, C, 1e-5, &want_mean, &want_rstd);
  kt::check_close(out, want, 1e-4, 1e-4, "layernorm out");
  kt::check_close(mean, want_mean, 1e-5, 1e-6, "layernorm mean");
  kt::check_close(rstd, want_rstd, 1e-4, 1e-6, "layernorm rstd");

  auto g = kt::random_floats(n, seed + 3);
  auto dx0 = kt::random_floats(n, seed + 4), dw0 = kt::random_floats(C, seed + 5),
       db0 = kt::random_floats(C, seed + 6);
  auto dx = dx0, dw = dw0, db = db0;
  layernorm_backward(dx.data(), dw.data(), db.data(), g.data(), x.data(), w.data(), mean.data(),
                     rstd.data(), N, C);

  auto loss_x = [&](const std::vector<double>& v) {
    return kt::weighted_sum(ref_layernorm(v, wd, bd, N, C, 1e-5), g);
  };
  auto loss_w = [&](const std::vector<double>& v) {
    return kt::weighted_sum(ref_layernorm(xd, v, bd, N, C, 1e-5), g);
  };
  auto loss_b = [&](const std::vector<double>& v) {
    return kt::weighted_sum(ref_layernorm(xd, wd, v, N, C, 1e-5), g);
  };
  auto nx = kt::numeric_grad(xd, loss_x, 1e-5);
  auto nw = kt::numeric_grad(wd, loss_w);
  auto nb = kt::numeric_grad(bd, loss_b);
  for (std::size_t i = 0; i < n; ++i) nx[i] += dx0[i];
  for (int i = 0; i < C; ++i) nw[i] += dw0[i], nb[i] += db0[i];
  kt::check_close(dx, nx, 1e-3, 1e-4, "layernorm dinp");
  kt::check_close(dw, nw, 1e-3, 1e-4, "layernorm dweight");
  kt::check_close(db, nb, 1e-3, 1e-4, "layernorm dbias");
}

}  // namespace

TEST_CASE("layernorm forward and backward: small shapes") {
  check_case({1, 1, 0.0f}, 1);  // a single value normalises to 0: out = bias
  check_case({1, 7, 0.0f}, 2);
  check_case({5, 13, 0.0f}, 3);
  check_case({4, 16, 20.0f}, 4);
}

TEST_CASE("layernorm backward: several row tasks and column blocks") {
  check_case({70, 33, 0.5f}, 10);  // 70 rows: three row tasks, the last one partial
  check_case({3, 300, 0.0f}, 11);  // 300 columns: two column blocks in the reduction
}

TEST_CASE("layernorm: null mean/rstd in forward, null parameter gradients in backward") {
  const int N = 40, C = 24;
  auto x = kt::random_floats(N * C, 50), w = kt::random_floats(C, 51), b = kt::random_floats(C, 52);
  std::vector<float> out1(N * C), out2(N * C), mean(N), rstd(N);
  layernorm_forward(out1.data(), nullptr, nullptr, x.data(), w.data(), b.data(), N, C);
  layernorm_forward(out2.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C);
  CHECK(out1 == out2);

  auto g = kt::random_floats(N * C, 53);
  std::vector<float> dx1(N * C, 0.0f), dx2(N * C, 0.0f), dw(C, 0.0f), db(C, 0.0f);
  layernorm_backward(dx1.data(), nullptr, nullptr, g.data(), x.data(), w.data(), mean.data(),
                     rstd.data(), N, C);
  layernorm_backward(dx2.data(), dw.data(), db.data(), g.data(), x.data(), w.data(), mean.data(),
                     rstd.data(), N, C);
  CHECK(dx1 == dx2);
}

TEST_CASE("layernorm backward: parameter gradients over many rows, any thread count") {
  // 9000 rows: more than 256 tasks of the minimum 32 rows, so tasks grow to 36 rows each.
  const int N = 9000, C = 12;
  const std::size_t n = static_cast<std::size_t>(N) * C;
  auto x = kt::random_floats(n, 60), w = kt::random_floats(C, 61), b = kt::random_floats(C, 62);
  auto g = kt::random_floats(n, 63);
  std::vector<float> out(n), mean(N), rstd(N), dw(C, 0.0f), db(C, 0.0f);
  layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C);
  layernorm_backward(nullptr, dw.data(), db.data(), g.data(), x.data(), w.data(), mean.data(),
                     rstd.data(), N, C);
  std::vector<double> want_w(C, 0.0), want_b(C, 0.0);
  for (int r = 0; r < N; ++r)
    for (int i = 0; i < C; ++i) {
      const std::size_t k = static_cast<std::size_t>(r) * C + i;
      want_w[i] += (static_cast<double>(x[k]) - mean[r]) * rstd[r] * g[k];
      want_b[i] += g[k];
    }
  kt::check_close(dw, want_w, 1e-4, 1e-3, "layernorm dweight (many rows)");
  kt::check_close(db, want_b, 1e-4, 1e-3, "layernorm dbias (many rows)");
  const int saved = omp_get_max_threads();
  for (int threads : {1, 3}) {
    omp_set_num_threads(threads);
    std::vector<float> dw_t(C, 0.0f), db_t(C, 0.0f);
    layernorm_backward(nullptr, dw_t.data(), db_t.data(), g.data(), x.data(), w.data(), mean.data(),
                       rstd.data(), N, C);
    CHECK(dw_t == dw);
    CHECK(db_t == db);
  }
  omp_set_num_threads(saved);
}
