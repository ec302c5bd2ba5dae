// Shared helpers for the kernel tests: random inputs, tolerant comparison against a double
// reference, and central finite differences of a scalar loss evaluated in double.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace kt {

inline std::vector<float> random_floats(std::size_t n, std::uint32_t seed, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

inline std::vector<double> to_double(const std::vector<float>& v) {
  return std::vector<double>(v.begin(), v.end());
}

// Every element must satisfy |got - want| <= abs_tol + rel_tol * |want|. Reports the count of
// violations and the worst one, so a failure says where to look.
template <class G, class W>
void check_close(const std::vector<G>& got, const std::vector<W>& want, double rel_tol,
                 double abs_tol, const std::string& what) {
  REQUIRE_MESSAGE(got.size() == want.size(), what << ": size mismatch");
  std::size_t bad = 0, worst = 0;
  double worst_excess = 0.0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double g = static_cast<double>(got[i]), w = static_cast<double>(want[i]);
    const double err = std::fabs(g - w), tol = abs_tol + rel_tol * std::fabs(w);
    if (!(err <= tol)) {  // also catches NaN
      ++bad;
      if (!(err - tol <= worst_excess)) {
        worst_excess = err - tol;
        worst = i;
      }
    }
  }
  CHECK_MESSAGE(bad == 0, what << ": " << bad << " of " << got.size()
                               << " elements out of tolerance; worst at " << worst << ": got "
                               << (got.empty() ? 0.0 : static_cast<double>(got[worst])) << ", want "
                               << (want.empty() ? 0.0 : static_cast<double>(want[worst])));
}

// d loss / d x[i] by central differences, for every i in `which` (all elements when empty).
// loss(x) is evaluated in double, so with h around 1e-4 both truncation and rounding error stay
// far below the tolerances the float kernels are checked with.
template <class Loss>
std::vector<double> numeric_grad(std::vector<double> x, Loss&& loss, double h = 1e-4,
                                 const std::vector<std::size_t>& which = {}) {
  std::vector<double> g(x.size(), 0.0);
  auto one = [&](std::size_t i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double up = loss(x);
    x[i] = saved - h;
    const double down = loss(x);
    x[i] = saved;
    g[i] = (up - down) / (2.0 * h);
  };
  if (which.empty())
    for (std::size_t i = 0; i < x.size(); ++i) one(i);
  else
    for (std::size_t i : which) one(i);
  return g;
}

// sum(out * w): the scalar loss whose gradient with respect to out is w.
template <class T>
double weighted_sum(const std::vector<T>& out, const std::vector<float>& w) {
  double s = 0.0;
  for (std::size_t i = 0; i < out.size(); ++i) s += static_cast<double>(out[i]) * w[i];
  return s;
}

}  // namespace kt
