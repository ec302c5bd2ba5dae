// The attention kernels' reference for the CPU tests (cpu/attention.hpp and
// cpu/short_attention.hpp compute the same function): the layouts' index arithmetic, a naive
// causal softmax attention accumulated in double, and random inputs.
#pragma once

#include "check.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kt {

struct AttentionShape {
  int B, T, H, d;
  std::size_t qkv_size() const { return static_cast<std::size_t>(B) * T * 3 * H * d; }
  std::size_t out_size() const { return static_cast<std::size_t>(B) * T * H * d; }
  std::size_t lse_size() const { return static_cast<std::size_t>(B) * H * T; }
  std::size_t qkv(int b, int t, int w, int h, int e) const {
    return ((((static_cast<std::size_t>(b) * T + t) * 3 + w) * H + h) * d) + e;
  }
  std::size_t out(int b, int t, int h, int e) const {
    return ((static_cast<std::size_t>(b) * T + t) * H + h) * d + e;
  }
};

// Causal softmax attention, one row at a time over all its keys, accumulated in double.
template <class T>
std::vector<T> ref_attention(const std::vector<T>& qkv, AttentionShape s,
                             std::vector<double>* lse = nullptr) {
  std::vector<T> out(s.out_size());
  if (lse) lse->assign(static_cast<std::size_t>(s.B) * s.H * s.T, 0.0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(s.d));
  std::vector<double> w(s.T);
  for (int b = 0; b < s.B; ++b)
    for (int h = 0; h < s.H; ++h)
      for (int t = 0; t < s.T; ++t) {
        double mx = -1e300;
        for (int j = 0; j <= t; ++j) {
          double dot = 0.0;
          for (int e = 0; e < s.d; ++e)
            dot += static_cast<double>(qkv[s.qkv(b, t, 0, h, e)]) *
                   static_cast<double>(qkv[s.qkv(b, j, 1, h, e)]);
          w[j] = dot * scale;
          mx = std::max(mx, w[j]);
        }
        double sum = 0.0;
        for (int j = 0; j <= t; ++j) sum += (w[j] = std::exp(w[j] - mx));
        for (int e = 0; e < s.d; ++e) {
          double acc = 0.0;
          for (int j = 0; j <= t; ++j) acc += w[j] * static_cast<double>(qkv[s.qkv(b, j, 2, h, e)]);
          out[s.out(b, t, h, e)] = static_cast<T>(acc / sum);
        }
        if (lse) (*lse)[(static_cast<std::size_t>(b) * s.H + h) * s.T + t] = mx + std::log(sum);
      }
  return out;
}

// The gradient of sum(out * g) with respect to qkv, in double, by the textbook formulas (with
// P_t the softmax row of query t): dV_j = sum_t P_tj g_t, dS_tj = P_tj (g_t · v_j - D_t) with
// D_t = sum_j P_tj g_t · v_j, dQ_t = scale sum_j dS_tj k_j, dK_j = scale sum_t dS_tj q_t.
inline std::vector<double> ref_attention_backward(const std::vector<float>& qkv,
                                                  const std::vector<float>& g, AttentionShape s) {
  std::vector<double> grad(s.qkv_size(), 0.0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(s.d));
  std::vector<double> p(s.T), dp(s.T);
  auto x = [&](int b, int t, int w, int h, int e) {
    return static_cast<double>(qkv[s.qkv(b, t, w, h, e)]);
  };
  for (int b = 0; b < s.B; ++b)
    for (int h = 0; h < s.H; ++h)
      for (int t = 0; t < s.T; ++t) {
        double mx = -1e300;
        for (int j = 0; j <= t; ++j) {
          double dot = 0.0, dot_g = 0.0;
          for (int e = 0; e < s.d; ++e) {
            dot += x(b, t, 0, h, e) * x(b, j, 1, h, e);
            dot_g += static_cast<double>(g[s.out(b, t, h, e)]) * x(b, j, 2, h, e);
          }
          p[j] = dot * scale;
          dp[j] = dot_g;
          mx = std::max(mx, p[j]);
        }
        double sum = 0.0;
        for (int j = 0; j <= t; ++j) sum += (p[j] = std::exp(p[j] - mx));
        double D = 0.0;
        for (int j = 0; j <= t; ++j) D += (p[j] /= sum) * dp[j];
        for (int j = 0; j <= t; ++j) {
          const double ds = p[j] * (dp[j] - D);
          for (int e = 0; e < s.d; ++e) {
            const double gte = g[s.out(b, t, h, e)];
            grad[s.qkv(b, t, 0, h, e)] += scale * ds * x(b, j, 1, h, e);
            grad[s.qkv(b, j, 1, h, e)] += scale * ds * x(b, t, 0, h, e);
            grad[s.qkv(b, j, 2, h, e)] += p[j] * gte;
          }
        }
      }
  return grad;
}

// Random qkv in [-2, 2]: large enough that softmax rows are far from uniform.
inline std::vector<float> random_qkv(AttentionShape s, std::uint32_t seed) {
  return kt::random_floats(s.qkv_size(), seed, -2.0f, 2.0f);
}

// A fused attention's backward, accumulated onto random initial values, against central
// differences of L = sum(out · g) through the double-precision reference, over every stride-th
// entry of qkv (all when stride is 1). forward and backward have the signatures of
// cpu::attention_forward and cpu::attention_backward.
template <class Forward, class Backward>
void check_attention_finite_differences(Forward forward, Backward backward, AttentionShape s,
                                        std::uint32_t seed, std::size_t stride,
                                        const std::string& what) {
  CAPTURE(s.T);
  const auto qkv = random_qkv(s, seed);
  std::vector<float> out(s.out_size()), lse(s.lse_size());
  forward(out.data(), lse.data(), qkv.data(), s.B, s.T, s.H, s.d);
  const auto g = random_floats(out.size(), seed + 1);
  const auto d0 = random_floats(qkv.size(), seed + 2);
  auto dqkv = d0;
  backward(dqkv.data(), g.data(), out.data(), lse.data(), qkv.data(), s.B, s.T, s.H, s.d);
  std::vector<std::size_t> which;
  for (std::size_t i = 0; stride > 1 && i < qkv.size(); i += stride) which.push_back(i);
  const auto num = numeric_grad(
      to_double(qkv),
      [&](const std::vector<double>& x) { return weighted_sum(ref_attention(x, s), g); }, 1e-4,
      which);
  std::vector<float> got;
  std::vector<double> want;
  for (std::size_t i = 0; i < qkv.size(); ++i)
    if (stride == 1 || i % stride == 0) {
      got.push_back(dqkv[i]);
      want.push_back(num[i] + d0[i]);
    }
  check_close(got, want, 1e-3, 1e-4, what + " dqkv vs finite differences");
}

}  // namespace kt
