// The tensor-core attention's arithmetic (kernels/cuda/attention_bf16.cu), replayed on the CPU
// in plain loops: the same bf16 roundings at the same places (q, k, v; the probabilities p,
// dout and dS before the products that read them) and the same online softmax over key tiles
// of 64, with fp32 sums in another order. It is not a kernel: it shows on a machine without a
// GPU that this plan of roundings stays within the tolerances that tests/gpu/
// test_attention_bf16.cpp allows against the CPU twin (tests/kernels/test_attention_bf16.cpp).
#pragma once

#include "attention_reference.hpp"

#include "cpu/bf16.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace kt {

inline constexpr int kEmulatedKeyTile = 64;  // the kernel's forward key tile (= its query tile)

// out, lse = the kernel's forward of qkv (fp32, rounded to bf16 inside), shape s.
inline void emulate_attention_forward_bf16(std::vector<float>& out, std::vector<float>& lse,
                                           const std::vector<float>& qkv, AttentionShape s) {
  using mb::kernels::cpu::round_to_bf16;
  out.assign(s.out_size(), 0.0f);
  lse.assign(s.lse_size(), 0.0f);
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.d));
  std::vector<float> o(s.d), pv(s.d), p(kEmulatedKeyTile);
  for (int b = 0; b < s.B; ++b)
    for (int h = 0; h < s.H; ++h)
      for (int t = 0; t < s.T; ++t) {
        float m = -INFINITY, l = 0.0f;
        std::fill(o.begin(), o.end(), 0.0f);
        // The kernel's key tiles start at multiples of 64 and end with the query tile's.
        for (int k0 = 0; k0 <= t; k0 += kEmulatedKeyTile) {
          const int nk = std::min(kEmulatedKeyTile, t + 1 - k0);
          float mx = -INFINITY;
          for (int j = 0; j < nk; ++j) {
            float dot = 0.0f;
            for (int e = 0; e < s.d; ++e)
              dot += round_to_bf16(qkv[s.qkv(b, t, 0, h, e)]) *
                     round_to_bf16(qkv[s.qkv(b, k0 + j, 1, h, e)]);
            p[j] = dot * scale;
            mx = std::max(mx, p[j]);
          }
          const float m_new = std::max(m, mx);
          const float corr = std::exp(m - m_new);
          float sum = 0.0f;
          std::fill(pv.begin(), pv.end(), 0.0f);
          for (int j = 0; j < nk; ++j) {
            const float pj = round_to_bf16(std::exp(p[j] - m_new));
            sum += pj;
            for (int e = 0; e < s.d; ++e)
              pv[e] += pj * round_to_bf16(qkv[s.qkv(b, k0 + j, 2, h, e)]);
          }
          l = l * corr + sum;
          m = m_new;
          for (int e = 0; e < s.d; ++e) o[e] = o[e] * corr + pv[e];
        }
        for (int e = 0; e < s.d; ++e) out[s.out(b, t, h, e)] = o[e] / l;
        lse[(static_cast<std::size_t>(b) * s.H + h) * s.T + t] = m + std::log(l);
      }
}

// dqkv += the kernel's backward, given dout and the forward's out and lse.
inline void emulate_attention_backward_bf16(std::vector<float>& dqkv,
                                            const std::vector<float>& dout,
                                            const std::vector<float>& out,
                                            const std::vector<float>& lse,
                                            const std::vector<float>& qkv, AttentionShape s) {
  using mb::kernels::cpu::round_to_bf16;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.d));
  auto q = [&](int b, int t, int h, int e) { return round_to_bf16(qkv[s.qkv(b, t, 0, h, e)]); };
  auto k = [&](int b, int t, int h, int e) { return round_to_bf16(qkv[s.qkv(b, t, 1, h, e)]); };
  auto v = [&](int b, int t, int h, int e) { return round_to_bf16(qkv[s.qkv(b, t, 2, h, e)]); };
  std::vector<float> dq(s.qkv_size(), 0.0f);  // unscaled sums, qkv-shaped
  for (int b = 0; b < s.B; ++b)
    for (int h = 0; h < s.H; ++h)
      for (int t = 0; t < s.T; ++t) {
        float D = 0.0f;  // fp32 dout · out, as RowDots
        for (int e = 0; e < s.d; ++e) D += dout[s.out(b, t, h, e)] * out[s.out(b, t, h, e)];
        const float row_lse = lse[(static_cast<std::size_t>(b) * s.H + h) * s.T + t];
        for (int j = 0; j <= t; ++j) {
          float dot = 0.0f, dp = 0.0f;
          for (int e = 0; e < s.d; ++e) {
            dot += q(b, t, h, e) * k(b, j, h, e);
            dp += round_to_bf16(dout[s.out(b, t, h, e)]) * v(b, j, h, e);
          }
          const float p = std::exp(dot * scale - row_lse);
          const float p_bf16 = round_to_bf16(p);
          const float ds = round_to_bf16(p * (dp - D));
          for (int e = 0; e < s.d; ++e) {
            dq[s.qkv(b, t, 0, h, e)] += ds * k(b, j, h, e);
            dq[s.qkv(b, j, 1, h, e)] += ds * q(b, t, h, e);
            dq[s.qkv(b, j, 2, h, e)] += p_bf16 * round_to_bf16(dout[s.out(b, t, h, e)]);
          }
        }
      }
  for (int b = 0; b < s.B; ++b)
    for (int t = 0; t < s.T; ++t)
      for (int h = 0; h < s.H; ++h)
        for (int e = 0; e < s.d; ++e) {
          dqkv[s.qkv(b, t, 0, h, e)] += scale * dq[s.qkv(b, t, 0, h, e)];
          dqkv[s.qkv(b, t, 1, h, e)] += scale * dq[s.qkv(b, t, 1, h, e)];
          dqkv[s.qkv(b, t, 2, h, e)] += dq[s.qkv(b, t, 2, h, e)];
        }
}

}  // namespace kt
