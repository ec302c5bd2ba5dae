// residual_forward / residual_backward.
#include "check.hpp"

#include "cpu/residual.hpp"

using namespace mb::kernels::cpu;

TEST_CASE("residual: forward is the exact sum, also in place and across chunk boundaries") {
  for (std::size_t n : {std::size_t{1}, std::size_t{7}, std::size_t{100000}}) {
    auto a = kt::random_floats(n, 1), b = kt::random_floats(n, 2);
    std::vector<float> out(n), want(n);
    for (std::size_t i = 0; i < n; ++i) want[i] = a[i] + b[i];
    residual_forward(out.data(), a.data(), b.data(), n);
    CHECK(out == want);
    residual_forward(a.data(), a.data(), b.data(), n);
    CHECK(a == want);
  }
}

TEST_CASE("residual: backward against finite differences, accumulating; null skips") {
  const std::size_t n = 37;
  auto a = kt::random_floats(n, 3), b = kt::random_floats(n, 4), g = kt::random_floats(n, 5);
  auto da0 = kt::random_floats(n, 6), db0 = kt::random_floats(n, 7);
  auto da = da0, db = db0;
  residual_backward(da.data(), db.data(), g.data(), n);
  auto ad = kt::to_double(a), bd = kt::to_double(b);
  auto sum = [](const std::vector<double>& x, const std::vector<double>& y) {
    std::vector<double> s(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) s[i] = x[i] + y[i];
    return s;
  };
  auto na = kt::numeric_grad(
      ad, [&](const std::vector<double>& x) { return kt::weighted_sum(sum(x, bd), g); });
  auto nb = kt::numeric_grad(
      bd, [&](const std::vector<double>& y) { return kt::weighted_sum(sum(ad, y), g); });
  for (std::size_t i = 0; i < n; ++i) na[i] += da0[i], nb[i] += db0[i];
  kt::check_close(da, na, 1e-5, 1e-6, "residual da");
  kt::check_close(db, nb, 1e-5, 1e-6, "residual db");

  auto da2 = da0;
  residual_backward(da2.data(), nullptr, g.data(), n);
  std::vector<float> want(n);
  for (std::size_t i = 0; i < n; ++i) want[i] = da0[i] + g[i];
  CHECK(da2 == want);
}
