// Causal attention with an online softmax, blocked like flash attention: a block of Bq queries
// meets the keys in blocks of Bk, and every product inside a block pair is a small matrix
// product done by one register-tiled micro-kernel (gemm_tile). Operands are copied into
// per-thread scratch first: queries pre-scaled by 1/sqrt(d), keys transposed to [d][keys],
// values and keys as [keys][d], with the head size padded to a multiple of the tile width
// and the padding zeroed, so the micro-kernel never needs an edge case. Per-row work (max,
// exp, sums) runs along contiguous rows of scores and vectorises; exp is exp_approx.
#include "cpu/attention.hpp"

#include "cpu/attention_tiles.hpp"
#include "cpu/simd.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

namespace mb::kernels::cpu {
namespace {

using namespace attention_tiles;

constexpr int Bq = kAttentionBlockQ;
constexpr int Bk = kAttentionBlockK;

static_assert(Bq % MR == 0 && Bk % NR == 0 && Bk % MR == 0, "blocks must hold whole tiles");

// One task of the forward pass: queries q0 .. q0+nq-1 of head h of batch b.
MB_CPU_CLONES
void forward_block(float* __restrict out, float* __restrict lse, const float* __restrict qkv,
                   const Layout& L, int b, int h, int q0, int nq, float scale,
                   float* __restrict scratch) {
  const int d = L.d, dp = round_up(d, NR), nq4 = round_up(nq, MR);
  const std::size_t tstride = L.tstride();
  float* __restrict qs = scratch;                                  // [Bq][dp]
  float* __restrict acc = qs + static_cast<std::size_t>(Bq) * dp;  // [Bq][dp]
  float* __restrict kt = acc + static_cast<std::size_t>(Bq) * dp;  // [dp][Bk]
  float* __restrict vb = kt + static_cast<std::size_t>(Bk) * dp;   // [Bk][dp]
  float* __restrict s = vb + static_cast<std::size_t>(Bk) * dp;    // [Bq][Bk]
  float m[Bq], l[Bq];

  pack_rows(qs, dp, qkv + L.qkv(b, q0, 0, h), tstride, nq, nq4, d, scale);
  for (std::size_t i = 0; i < static_cast<std::size_t>(nq4) * dp; ++i) acc[i] = 0.0f;
  for (int r = 0; r < nq; ++r) m[r] = kNegInf, l[r] = 0.0f;

  const int kend = q0 + nq;  // the last query sees keys up to itself
  for (int k0 = 0; k0 < kend; k0 += Bk) {
    const int nk = std::min(Bk, kend - k0), nk16 = round_up(nk, NR);
    pack_transposed(kt, Bk, qkv + L.qkv(b, k0, 1, h), tstride, nk, nk16, d, dp);
    pack_rows(vb, dp, qkv + L.qkv(b, k0, 2, h), tstride, nk, nk, d, 1.0f);
    gemm_tile<false, false>(s, Bk, qs, dp, kt, Bk, nq4, nk16, dp);  // scores
    for (int r = 0; r < nq; ++r) {
      float* __restrict sr = s + static_cast<std::size_t>(r) * Bk;
      const int n = std::min(nk, q0 + r - k0 + 1);  // causal: keys <= query position
      if (n <= 0) {                                 // the whole block lies in this row's future
        for (int c = 0; c < nk16; ++c) sr[c] = 0.0f;
        continue;
      }
      const float m_new = std::max(m[r], row_max(sr, n));
      const float corr = exp_approx(m[r] - m_new);  // 0 on the first block (m = -inf)
      const float sum = exp_shifted_sum(sr, n, m_new);
      for (int c = n; c < nk16; ++c) sr[c] = 0.0f;
      l[r] = l[r] * corr + sum;
      m[r] = m_new;
      float* __restrict o = acc + static_cast<std::size_t>(r) * dp;
      for (int e = 0; e < dp; ++e) o[e] *= corr;
    }
    for (int r = nq; r < nq4; ++r)
      for (int c = 0; c < nk16; ++c) s[static_cast<std::size_t>(r) * Bk + c] = 0.0f;
    gemm_tile<false, true>(acc, dp, s, Bk, vb, dp, nq4, dp, nk);  // acc += P · V
  }
  for (int r = 0; r < nq; ++r) {
    const float inv = 1.0f / l[r];
    float* __restrict o = out + L.out(b, q0 + r, h);
    for (int e = 0; e < d; ++e) o[e] = acc[static_cast<std::size_t>(r) * dp + e] * inv;
    if (lse) lse[L.lse(b, h, q0 + r)] = m[r] + std::log(l[r]);
  }
}

// One task of the backward pass: all of head h of batch b. With P = softmax(S) recomputed from
// lse and D_i = dout_i · out_i:
//   dV_j += P_ij dout_i,  dS_ij = P_ij (dout_i · v_j - D_i),
//   dQ_i += scale dS_ij k_j,  dK_j += scale dS_ij q_i.
// Per block pair that is five block products. dK and dV of the whole head accumulate in
// scratch and are added to dqkv at the end; with one task per head and a fixed loop order
// the result is deterministic.
MB_CPU_CLONES
void backward_head(float* __restrict dqkv, const float* __restrict dout,
                   const float* __restrict out, const float* __restrict lse,
                   const float* __restrict qkv, const Layout& L, int b, int h, float scale,
                   float* __restrict scratch, bool accumulate) {
  const int T = L.T, d = L.d, dp = round_up(d, NR), Tp = round_up(T, NR);
  const std::size_t tstride = L.tstride();
  const std::size_t Tdp = static_cast<std::size_t>(Tp) * dp;
  const std::size_t Bqdp = static_cast<std::size_t>(Bq) * dp;
  float* __restrict kt = scratch;                                // [dp][Tp] keys, transposed
  float* __restrict vt = kt + Tdp;                               // [dp][Tp] values, transposed
  float* __restrict kr = vt + Tdp;                               // [Tp][dp] keys as rows
  float* __restrict dk = kr + Tdp;                               // [Tp][dp]
  float* __restrict dv = dk + Tdp;                               // [Tp][dp]
  float* __restrict qs = dv + Tdp;                               // [Bq][dp] scaled queries
  float* __restrict dy = qs + Bqdp;                              // [Bq][dp] dout rows
  float* __restrict dq = dy + Bqdp;                              // [Bq][dp]
  float* __restrict p = dq + Bqdp;                               // [Bq][Bk]
  float* __restrict ds = p + static_cast<std::size_t>(Bq) * Bk;  // [Bq][Bk]
  float D[Bq], row_lse[Bq];

  pack_transposed(kt, Tp, qkv + L.qkv(b, 0, 1, h), tstride, T, Tp, d, dp);
  pack_transposed(vt, Tp, qkv + L.qkv(b, 0, 2, h), tstride, T, Tp, d, dp);
  pack_rows(kr, dp, qkv + L.qkv(b, 0, 1, h), tstride, T, Tp, d, 1.0f);
  for (std::size_t i = 0; i < 2 * Tdp; ++i) dk[i] = 0.0f;  // dk and dv are adjacent

  for (int q0 = 0; q0 < T; q0 += Bq) {
    const int nq = std::min(Bq, T - q0), nq4 = round_up(nq, MR);
    pack_rows(qs, dp, qkv + L.qkv(b, q0, 0, h), tstride, nq, nq4, d, scale);
    pack_rows(dy, dp, dout + L.out(b, q0, h), static_cast<std::size_t>(L.H) * d, nq, nq4, d, 1.0f);
    for (std::size_t i = 0; i < static_cast<std::size_t>(nq4) * dp; ++i) dq[i] = 0.0f;
    for (int r = 0; r < nq; ++r) {
      const float* __restrict g = dy + static_cast<std::size_t>(r) * dp;
      const float* __restrict y = out + L.out(b, q0 + r, h);
      float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
      for (int e = 0; e < d; ++e) acc += g[e] * y[e];
      D[r] = acc;
      row_lse[r] = lse[L.lse(b, h, q0 + r)];
    }
    const int kend = q0 + nq;
    for (int k0 = 0; k0 < kend; k0 += Bk) {
      const int nk = std::min(Bk, kend - k0), nk16 = round_up(nk, NR);
      gemm_tile<false, false>(p, Bk, qs, dp, kt + k0, Tp, nq4, nk16, dp);   // S
      gemm_tile<false, false>(ds, Bk, dy, dp, vt + k0, Tp, nq4, nk16, dp);  // dP
      for (int r = 0; r < nq4; ++r) {
        float* __restrict pr = p + static_cast<std::size_t>(r) * Bk;
        float* __restrict dsr = ds + static_cast<std::size_t>(r) * Bk;
        // causal: keys <= query position; padding rows (r >= nq) get nothing.
        const int n = r < nq ? std::max(0, std::min(nk, q0 + r - k0 + 1)) : 0;
        const float lr = r < nq ? row_lse[r] : 0.0f, Dr = r < nq ? D[r] : 0.0f;
        for (int c = 0; c < n; ++c) {
          pr[c] = exp_approx(pr[c] - lr);
          dsr[c] = pr[c] * (dsr[c] - Dr);
        }
        for (int c = n; c < nk16; ++c) pr[c] = dsr[c] = 0.0f;
      }
      float* dvj = dv + static_cast<std::size_t>(k0) * dp;
      float* dkj = dk + static_cast<std::size_t>(k0) * dp;
      gemm_tile<true, true>(dvj, dp, p, Bk, dy, dp, nk16, dp, nq);   // dV += Pᵀ · dout
      gemm_tile<true, true>(dkj, dp, ds, Bk, qs, dp, nk16, dp, nq);  // dK += dSᵀ · q·scale
      gemm_tile<false, true>(dq, dp, ds, Bk, kr + static_cast<std::size_t>(k0) * dp, dp, nq4, dp,
                             nk);  // dQ += dS · K
    }
    for (int r = 0; r < nq; ++r) {
      float* __restrict g = dqkv + L.qkv(b, q0 + r, 0, h);
      for (int e = 0; e < d; ++e)
        g[e] = (accumulate ? g[e] : 0.0f) + scale * dq[static_cast<std::size_t>(r) * dp + e];
    }
  }
  for (int t = 0; t < T; ++t) {
    float* __restrict gk = dqkv + L.qkv(b, t, 1, h);
    float* __restrict gv = dqkv + L.qkv(b, t, 2, h);
    for (int e = 0; e < d; ++e)
      gk[e] = (accumulate ? gk[e] : 0.0f) + dk[static_cast<std::size_t>(t) * dp + e];
    for (int e = 0; e < d; ++e)
      gv[e] = (accumulate ? gv[e] : 0.0f) + dv[static_cast<std::size_t>(t) * dp + e];
  }
}

void check_sizes(int B, int T, int H, int d) {
  if (B < 0 || T < 0 || H < 0 || d <= 0)
    throw std::invalid_argument("attention: need B, T, H >= 0 and d > 0");
}

}  // namespace

void attention_forward(float* out, float* lse, const float* qkv, int B, int T, int H, int d) {
  check_sizes(B, T, H, d);
  const Layout L{T, H, d};
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const int qblocks = (T + Bq - 1) / Bq;
  const std::int64_t tasks = static_cast<std::int64_t>(B) * H * qblocks;
  const std::size_t dp = static_cast<std::size_t>(round_up(d, NR));
  const std::size_t scratch_size = (2 * Bq + 2 * Bk) * dp + static_cast<std::size_t>(Bq) * Bk;
  // Later query blocks see more keys, so tasks differ in cost: hand them out dynamically,
  // largest first, so the short ones fill in at the end. Short sequences (the local model's
  // patches) make many tiny tasks of equal cost; those go out in batches.
  const int batch = qblocks == 1 ? 16 : 1;
#pragma omp parallel if (tasks > 1)
  {
    std::vector<float> scratch(scratch_size);
#pragma omp for schedule(dynamic, batch)
    for (std::int64_t task = 0; task < tasks; ++task) {
      const int qb = qblocks - 1 - static_cast<int>(task % qblocks);
      const std::int64_t bh = task / qblocks;
      const int q0 = qb * Bq;
      forward_block(out, lse, qkv, L, static_cast<int>(bh / H), static_cast<int>(bh % H), q0,
                    std::min(Bq, T - q0), scale, scratch.data());
    }
  }
}

void attention_backward(float* dqkv, const float* dout, const float* out, const float* lse,
                        const float* qkv, int B, int T, int H, int d, bool accumulate_dqkv) {
  check_sizes(B, T, H, d);
  if (T == 0) return;
  const Layout L{T, H, d};
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const std::int64_t tasks = static_cast<std::int64_t>(B) * H;
  const std::size_t dp = static_cast<std::size_t>(round_up(d, NR));
  const std::size_t Tp = static_cast<std::size_t>(round_up(T, NR));
  const std::size_t scratch_size =
      5 * Tp * dp + 3 * static_cast<std::size_t>(Bq) * dp + 2 * static_cast<std::size_t>(Bq) * Bk;
#pragma omp parallel if (tasks > 1)
  {
    std::vector<float> scratch(scratch_size);
#pragma omp for schedule(static)
    for (std::int64_t task = 0; task < tasks; ++task)
      backward_head(dqkv, dout, out, lse, qkv, L, static_cast<int>(task / H),
                    static_cast<int>(task % H), scale, scratch.data(), accumulate_dqkv);
  }
}

}  // namespace mb::kernels::cpu
