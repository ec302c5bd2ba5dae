// The vectorisable exp and tanh used by the kernels, against libm.
#include "check.hpp"

#include "cpu/simd.hpp"

#include <limits>

using mb::kernels::cpu::exp_approx;
using mb::kernels::cpu::tanh_approx;

TEST_CASE("exp_approx: within 1 ulp of exp across the normal range") {
  double worst = 0.0;
  for (float x = -87.0f; x <= 88.0f; x += 0.000731f) {
    const double want = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::fabs(exp_approx(x) - want) / want);
  }
  CHECK(worst < 1.2e-7);  // 1 ulp of float
  CHECK(exp_approx(0.0f) == 1.0f);
  CHECK(exp_approx(-std::numeric_limits<float>::infinity()) == 0.0f);
  CHECK(exp_approx(-100.0f) == 0.0f);
  CHECK(exp_approx(100.0f) == exp_approx(88.3f));  // saturates instead of overflowing
  CHECK(std::isnan(exp_approx(std::numeric_limits<float>::quiet_NaN())));
}

TEST_CASE("tanh_approx: absolute error below 2.5e-7") {
  double worst = 0.0;
  for (float u = -12.0f; u <= 12.0f; u += 0.000377f)
    worst = std::max(worst, std::fabs(tanh_approx(u) - std::tanh(static_cast<double>(u))));
  CHECK(worst < 2.5e-7);
  CHECK(tanh_approx(50.0f) == 1.0f);
  CHECK(tanh_approx(-50.0f) == -1.0f);
}
