// dropout_forward / dropout_backward: the mask's determinism and rate, and the gradient.
#include "check.hpp"

#include "cpu/dropout.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

using namespace mb::kernels::cpu;

namespace {

std::vector<float> ones(std::size_t n) { return std::vector<float>(n, 1.0f); }

}  // namespace

TEST_CASE("dropout: p = 0 is the identity, forward and backward") {
  auto x = kt::random_floats(1000, 1);
  std::vector<float> out(x.size());
  dropout_forward(out.data(), x.data(), x.size(), 0.0f, 42, 0);
  CHECK(out == x);
  auto d = kt::random_floats(x.size(), 2), g = kt::random_floats(x.size(), 3);
  dropout_backward(d.data(), g.data(), d.size(), 0.0f, 42, 0);
  CHECK(d == g);
}

TEST_CASE("dropout: kept values are scaled by 1/(1-p), dropped ones are 0, rate is p") {
  const std::size_t n = 1 << 20;
  for (float p : {0.1f, 0.5f, 0.9f}) {
    auto x = kt::random_floats(n, 4, 0.5f, 1.5f);  // never 0, so a 0 output means dropped
    std::vector<float> out(n);
    dropout_forward(out.data(), x.data(), n, p, 7, 0);
    const float scale = 1.0f / (1.0f - p);
    std::size_t dropped = 0, bad = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (out[i] == 0.0f)
        ++dropped;
      else if (out[i] != x[i] * scale)
        ++bad;
    }
    CHECK(bad == 0);
    // Binomial standard deviation is at most 0.0005 here; allow ten of them.
    CHECK(std::fabs(static_cast<double>(dropped) / n - p) < 0.005);
  }
}

TEST_CASE("dropout: the mask is a pure function of (seed, offset + i)") {
  const std::size_t n = 100000;
  auto x = ones(n);
  std::vector<float> a(n), b(n), c(n), shifted(n - 1000);
  dropout_forward(a.data(), x.data(), n, 0.3f, 123, 0);
  dropout_forward(b.data(), x.data(), n, 0.3f, 123, 0);
  CHECK(a == b);  // same seed, same mask
  dropout_forward(c.data(), x.data(), n, 0.3f, 124, 0);
  std::size_t same = 0;
  for (std::size_t i = 0; i < n; ++i) same += (a[i] == c[i]);
  CHECK(same < n * 0.65);  // independent masks agree on 0.7² + 0.3² = 58% of elements
  // A call at offset 1000 continues the same stream, so work can be split at any point.
  dropout_forward(shifted.data(), x.data(), shifted.size(), 0.3f, 123, 1000);
  CHECK(std::equal(shifted.begin(), shifted.end(), a.begin() + 1000));
  // The helpers in the header (shared with CUDA) define the mask.
  const std::uint64_t key = dropout_key(123);
  const std::uint32_t t = dropout_threshold(0.3f);
  std::size_t mismatch = 0;
  for (std::size_t i = 0; i < n; ++i) mismatch += ((dropout_bits(key, i) >= t) != (a[i] != 0.0f));
  CHECK(mismatch == 0);
}

TEST_CASE("dropout: the mask does not depend on the number of threads") {
  const std::size_t n = 300001;  // several chunks, the last one partial
  auto x = kt::random_floats(n, 5);
  std::vector<float> want(n);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  dropout_forward(want.data(), x.data(), n, 0.2f, 99, 17);
  for (int threads : {2, 3}) {
    omp_set_num_threads(threads);
    std::vector<float> got(n);
    dropout_forward(got.data(), x.data(), n, 0.2f, 99, 17);
    CHECK(got == want);
  }
  omp_set_num_threads(saved);
}

TEST_CASE("dropout: backward against finite differences, with the forward's mask; in place") {
  const std::size_t n = 257;
  const float p = 0.25f;
  auto x = kt::random_floats(n, 6), g = kt::random_floats(n, 7);
  std::vector<float> out(n);
  dropout_forward(out.data(), x.data(), n, p, 5, 300);
  // The reference forward in double uses the mask the kernel drew (out != 0 where kept).
  std::vector<double> factor(n);
  for (std::size_t i = 0; i < n; ++i) factor[i] = out[i] != 0.0f ? 1.0 / (1.0 - p) : 0.0;
  std::vector<float> d(n, std::nanf(""));  // written, not read
  dropout_backward(d.data(), g.data(), n, p, 5, 300);
  auto num = kt::numeric_grad(kt::to_double(x), [&](const std::vector<double>& v) {
    std::vector<double> y(n);
    for (std::size_t i = 0; i < n; ++i) y[i] = v[i] * factor[i];
    return kt::weighted_sum(y, g);
  });
  kt::check_close(d, num, 1e-5, 1e-6, "dropout dinp");

  auto y = x;
  dropout_forward(y.data(), y.data(), n, p, 5, 300);
  CHECK(y == out);
}

TEST_CASE("dropout: backward writes dinp over NaN with the bits of adding to zeros") {
  // The model no longer zeroes the buffer first (transformer_stack.cpp): what it wrote before,
  // 0 + dout · factor, a dropped element +0 even where dout is negative, must be what it
  // writes now.
  const std::size_t n = 100001;  // several chunks, the last one partial
  for (float p : {0.0f, 0.3f}) {
    auto g = kt::random_floats(n, 9);
    for (std::size_t i = 0; i < n; i += 7) g[i] = -std::fabs(g[i]);  // negatives for sure
    g[3] = -0.0f;
    std::vector<float> zeros(n, 0.0f), added(n);
    dropout_forward(added.data(), g.data(), n, p, 11, 40);  // dout · factor: the forward's mask
    for (std::size_t i = 0; i < n; ++i) added[i] = zeros[i] + added[i];
    std::vector<float> d(n, std::nanf(""));
    dropout_backward(d.data(), g.data(), n, p, 11, 40);
    CHECK(std::memcmp(d.data(), added.data(), n * sizeof(float)) == 0);
    std::size_t negative_zeros = 0;
    for (float v : d) negative_zeros += (v == 0.0f && std::signbit(v));
    CHECK(negative_zeros == 0);
  }
}

TEST_CASE("dropout: p outside [0, 1) is rejected") {
  std::vector<float> x(4, 1.0f);
  CHECK_THROWS_AS(dropout_forward(x.data(), x.data(), 4, 1.0f, 0, 0), std::invalid_argument);
  CHECK_THROWS_AS(dropout_forward(x.data(), x.data(), 4, -0.1f, 0, 0), std::invalid_argument);
  CHECK_THROWS_AS(dropout_backward(x.data(), x.data(), 4, 1.5f, 0, 0), std::invalid_argument);
}
