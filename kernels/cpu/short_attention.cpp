// Short-sequence causal attention on the CPU, one task per (batch, head), the whole sequence at
// once: each query row gets all its scores, their max, the exponentials and their sum, and the
// weighted sum of the values (an exact softmax: no online rescaling), and the backward follows
// the textbook formulas. The products (scores Q·Kᵀ and P·V; dout·Vᵀ, dS·K, Pᵀ·dout and dSᵀ·Q)
// go through attention.cpp's register-tiled micro-kernel (attention_tiles.hpp), MR = 4 rows at
// a time and each row group only as far as causality reaches: written as plain loops over rows
// this kernel ran 1.4 (T = 8) to 7.5 (T = 256, backward) times slower than the tiled attention,
// and now runs about as fast. The per-row work (max, exp, sums) runs along contiguous rows and
// vectorises; exp is exp_approx, as in attention.cpp, so the two CPU kernels agree to rounding.
// Every sum runs in the CUDA twin's order: scores over e, outputs and dQ over keys, dK and dV
// over queries, each increasing. Sequences of at most 8 positions (text patches) take a path
// of their own, with the keys as the lanes of one vector (tiny_forward_head and
// tiny_backward_head below).
#include "cpu/short_attention.hpp"

#include "cpu/attention_tiles.hpp"
#include "cpu/simd.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace mb::kernels::cpu {
namespace {

using namespace attention_tiles;

// Padded sizes of one task's operands: head size to whole tiles (dp), keys to whole tile
// columns (Tk), queries to whole tile rows (Tq).
// Queries are taken `rows` at a time (a register block's rows).
struct Padded {
  int dp, Tk, Tq;
  Padded(const Layout& L, int rows)
      : dp(round_up(L.d, NR)), Tk(round_up(L.T, NR)), Tq(round_up(L.T, rows)) {}
};

std::size_t forward_scratch(const Layout& L, int rows) {
  const Padded P(L, rows);
  return static_cast<std::size_t>(P.Tq + P.Tk + rows) * P.dp +  // qs, vr, acc
         static_cast<std::size_t>(P.dp + rows) * P.Tk;          // kt, p
}

template <class Vec, int Rows>
__attribute__((always_inline)) inline void forward_head(float* __restrict out,
                                                        float* __restrict lse,
                                                        const float* __restrict qkv,
                                                        const Layout& L, int b, int h, float scale,
                                                        float* __restrict scratch) {
  const int T = L.T, d = L.d;
  const Padded P(L, Rows);
  const int dp = P.dp, Tk = P.Tk;
  const std::size_t tstride = L.tstride();
  float* __restrict qs = scratch;                                    // [Tq][dp] scaled queries
  float* __restrict vr = qs + static_cast<std::size_t>(P.Tq) * dp;   // [Tk][dp] values
  float* __restrict acc = vr + static_cast<std::size_t>(Tk) * dp;    // [Rows][dp]
  float* __restrict kt = acc + static_cast<std::size_t>(Rows) * dp;  // [dp][Tk] keys, transposed
  float* __restrict p = kt + static_cast<std::size_t>(dp) * Tk;      // [Rows][Tk] a group's scores
  float m[Rows], l[Rows];

  pack_rows(qs, dp, qkv + L.qkv(b, 0, 0, h), tstride, T, P.Tq, d, scale);
  pack_transposed(kt, Tk, qkv + L.qkv(b, 0, 1, h), tstride, T, Tk, d, dp);
  pack_rows(vr, dp, qkv + L.qkv(b, 0, 2, h), tstride, T, Tk, d, 1.0f);

  for (int r0 = 0; r0 < T; r0 += Rows) {
    const int nk = std::min(T, r0 + Rows);  // keys the group's last query sees
    gemm_tile<false, false, Vec, Rows>(p, Tk, qs + static_cast<std::size_t>(r0) * dp, dp, kt, Tk,
                                       Rows, round_up(nk, NR), dp);
    for (int r = 0; r < Rows; ++r) {
      float* __restrict pr = p + static_cast<std::size_t>(r) * Tk;
      const int n = std::min(r0 + r + 1, T);  // causal: keys 0..t (padding rows: any)
      const float mx = row_max(pr, n);
      const float sum = exp_shifted_sum(pr, n, mx);
      for (int j = n; j < nk; ++j) pr[j] = 0.0f;
      m[r] = mx;
      l[r] = sum;
    }
    gemm_tile<false, false, Vec, Rows>(acc, dp, p, Tk, vr, dp, Rows, dp,
                                       nk);  // keys in increasing order
    for (int r = 0; r < Rows && r0 + r < T; ++r) {
      const float inv = 1.0f / l[r];
      float* __restrict o = out + L.out(b, r0 + r, h);
      for (int e = 0; e < d; ++e) o[e] = acc[static_cast<std::size_t>(r) * dp + e] * inv;
      if (lse) lse[L.lse(b, h, r0 + r)] = m[r] + std::log(l[r]);
    }
  }
}

std::size_t backward_scratch(const Layout& L, int rows) {
  const Padded P(L, rows);
  return static_cast<std::size_t>(2 * P.Tq + P.Tk + 3 * rows) * P.dp +  // qs, dy, kr, dq, dk, dv
         static_cast<std::size_t>(2 * P.dp + 2 * P.Tq) * P.Tk;          // kt, vt, p, ds
}

// All of head h of sequence b. With P = exp(S - lse) recomputed and D_t = dout_t · out_t:
//   dS_tj = P_tj (dout_t · v_j - D_t),  dQ_t += scale Σ_j dS_tj k_j,
//   dK_j += Σ_t dS_tj (scale q_t),      dV_j += Σ_t P_tj dout_t.
// First by rows (P, dS and dQ of a group of queries), keeping P and dS of the whole head; then
// by columns (dK and dV of a group of keys, over the queries from the group on).
template <class Vec, int Rows>
__attribute__((always_inline)) inline void backward_head(
    float* __restrict dqkv, const float* __restrict dout, const float* __restrict out,
    const float* __restrict lse, const float* __restrict qkv, const Layout& L, int b, int h,
    float scale, float* __restrict scratch, bool accumulate) {
  const int T = L.T, d = L.d;
  const Padded P(L, Rows);
  const int dp = P.dp, Tk = P.Tk, Tq = P.Tq;
  const std::size_t tstride = L.tstride(), ostride = static_cast<std::size_t>(L.H) * d;
  const std::size_t Tqdp = static_cast<std::size_t>(Tq) * dp;
  const std::size_t Rowsdp = static_cast<std::size_t>(Rows) * dp;
  float* __restrict qs = scratch;                                 // [Tq][dp] scaled queries
  float* __restrict dy = qs + Tqdp;                               // [Tq][dp] dout rows
  float* __restrict kr = dy + Tqdp;                               // [Tk][dp] keys as rows
  float* __restrict dq = kr + static_cast<std::size_t>(Tk) * dp;  // [Rows][dp]
  float* __restrict dk = dq + Rowsdp;                             // [Rows][dp]
  float* __restrict dv = dk + Rowsdp;                             // [Rows][dp]
  float* __restrict kt = dv + Rowsdp;                             // [dp][Tk] keys, transposed
  float* __restrict vt = kt + static_cast<std::size_t>(dp) * Tk;  // [dp][Tk] values, transposed
  float* __restrict p = vt + static_cast<std::size_t>(dp) * Tk;   // [Tq][Tk] P
  float* __restrict ds = p + static_cast<std::size_t>(Tq) * Tk;   // [Tq][Tk] dS

  pack_rows(qs, dp, qkv + L.qkv(b, 0, 0, h), tstride, T, Tq, d, scale);
  pack_rows(dy, dp, dout + L.out(b, 0, h), ostride, T, Tq, d, 1.0f);
  pack_rows(kr, dp, qkv + L.qkv(b, 0, 1, h), tstride, T, Tk, d, 1.0f);
  pack_transposed(kt, Tk, qkv + L.qkv(b, 0, 1, h), tstride, T, Tk, d, dp);
  pack_transposed(vt, Tk, qkv + L.qkv(b, 0, 2, h), tstride, T, Tk, d, dp);

  for (int r0 = 0; r0 < T; r0 += Rows) {
    const int nk = std::min(T, r0 + Rows), nk16 = round_up(nk, NR);
    float* __restrict pg = p + static_cast<std::size_t>(r0) * Tk;
    float* __restrict dsg = ds + static_cast<std::size_t>(r0) * Tk;
    gemm_tile<false, false, Vec, Rows>(pg, Tk, qs + static_cast<std::size_t>(r0) * dp, dp, kt, Tk,
                                       Rows, nk16,
                                       dp);  // S
    gemm_tile<false, false, Vec, Rows>(dsg, Tk, dy + static_cast<std::size_t>(r0) * dp, dp, vt, Tk,
                                       Rows, nk16,
                                       dp);  // dout · V
    for (int r = 0; r < Rows; ++r) {
      float* __restrict pr = pg + static_cast<std::size_t>(r) * Tk;
      float* __restrict dsr = dsg + static_cast<std::size_t>(r) * Tk;
      const int t = r0 + r;
      // Causal: keys 0..t; the rest of the row, and padding rows, stay 0 for the column
      // products below.
      const int n = t < T ? t + 1 : 0;
      float D = 0.0f;
      if (t < T) {
        const float* __restrict g = dy + static_cast<std::size_t>(t) * dp;
        const float* __restrict y = out + L.out(b, t, h);
#pragma omp simd reduction(+ : D)
        for (int e = 0; e < d; ++e) D += g[e] * y[e];
      }
      const float row_lse = t < T ? lse[L.lse(b, h, t)] : 0.0f;
      for (int j = 0; j < n; ++j) {
        pr[j] = exp_approx(pr[j] - row_lse);
        dsr[j] = pr[j] * (dsr[j] - D);
      }
      for (int j = n; j < Tk; ++j) pr[j] = dsr[j] = 0.0f;
    }
    gemm_tile<false, false, Vec, Rows>(dq, dp, dsg, Tk, kr, dp, Rows, dp,
                                       nk);  // dS · K, keys increasing
    for (int r = 0; r < Rows && r0 + r < T; ++r) {
      float* __restrict g = dqkv + L.qkv(b, r0 + r, 0, h);
      for (int e = 0; e < d; ++e)
        g[e] = (accumulate ? g[e] : 0.0f) + scale * dq[static_cast<std::size_t>(r) * dp + e];
    }
  }

  for (int j0 = 0; j0 < T; j0 += Rows) {
    // Queries j0 .. T - 1 (those before j0 see none of these keys), in increasing order.
    const std::size_t corner = static_cast<std::size_t>(j0) * Tk + j0;
    const std::size_t rows = static_cast<std::size_t>(j0) * dp;
    gemm_tile<true, false, Vec, Rows>(dv, dp, p + corner, Tk, dy + rows, dp, Rows, dp,
                                      T - j0);  // Pᵀ dout
    gemm_tile<true, false, Vec, Rows>(dk, dp, ds + corner, Tk, qs + rows, dp, Rows, dp,
                                      T - j0);  // dSᵀ q
    for (int i = 0; i < Rows && j0 + i < T; ++i) {
      float* __restrict gk = dqkv + L.qkv(b, j0 + i, 1, h);
      float* __restrict gv = dqkv + L.qkv(b, j0 + i, 2, h);
      for (int e = 0; e < d; ++e)
        gk[e] = (accumulate ? gk[e] : 0.0f) + dk[static_cast<std::size_t>(i) * dp + e];
      for (int e = 0; e < d; ++e)
        gv[e] = (accumulate ? gv[e] : 0.0f) + dv[static_cast<std::size_t>(i) * dp + e];
    }
  }
}

// Each head's work, compiled for every clone with 8-float vectors and queries 4 at a time
// (blocks of 4 x 16 outputs: 8 of AVX2's 16 registers), and for AVX-512 with 16-float vectors
// and queries 8 at a time (blocks of 8 x 32 outputs: 16 of its 32 registers, four times the
// work per load), which the global model's heads of 64 over 256 positions fill. Every output
// is the same sum in the same order (a query group's rows past a query's causal reach add
// exact zeros): the same bits.
constexpr int kRowsAvx2 = MR;
constexpr int kRowsAvx512 = 2 * MR;
MB_CPU_CLONES
void forward_head_any(float* out, float* lse, const float* qkv, const Layout& L, int b, int h,
                      float scale, float* scratch) {
  forward_head<Vec8, kRowsAvx2>(out, lse, qkv, L, b, h, scale, scratch);
}
MB_CPU_CLONES
void backward_head_any(float* dqkv, const float* dout, const float* out, const float* lse,
                       const float* qkv, const Layout& L, int b, int h, float scale, float* scratch,
                       bool accumulate) {
  backward_head<Vec8, kRowsAvx2>(dqkv, dout, out, lse, qkv, L, b, h, scale, scratch, accumulate);
}
#if MB_CPU_HAS_AVX512_VARIANT
MB_CPU_AVX512
void forward_head_avx512(float* out, float* lse, const float* qkv, const Layout& L, int b, int h,
                         float scale, float* scratch) {
  forward_head<Vec16, kRowsAvx512>(out, lse, qkv, L, b, h, scale, scratch);
}
MB_CPU_AVX512
void backward_head_avx512(float* dqkv, const float* dout, const float* out, const float* lse,
                          const float* qkv, const Layout& L, int b, int h, float scale,
                          float* scratch, bool accumulate) {
  backward_head<Vec16, kRowsAvx512>(dqkv, dout, out, lse, qkv, L, b, h, scale, scratch, accumulate);
}
#else
constexpr auto forward_head_avx512 = forward_head_any;
constexpr auto backward_head_avx512 = backward_head_any;
#endif

// Sequences of at most 8 positions (MEGABYTE's text patches), heads a multiple of 8 wide: the
// keys are the lanes of one 8-float vector, so a query's scores are one vector, summed over
// the head's elements with a broadcast multiply-add each, and no tile is padded. Through the
// tiles above such a head spent most of its time packing and padding (T = 8 to 16 key
// columns) and in scalar softmax loops that the vectoriser leaves for short rows. The sums run
// in the same orders (scores over e, outputs and dQ over keys, dK and dV over queries, each
// increasing; a row's softmax is row_max and exp_shifted_sum, as the tiles'), on 8-float
// vectors for every instruction set, so the clones give the same bits.
constexpr int kTinyMaxT = 8;
constexpr int kTinyLanes = 8;

bool takes_tiny(int T, int d) {
  return T <= kTinyMaxT && d % kTinyLanes == 0 && d <= kShortAttentionMaxHeadDim;
}

// Rows src + j · stride (j < T, d floats each) transposed into dst[e · 8 + j], zero for j >= T.
__attribute__((always_inline)) inline void transpose_to_lanes(float* __restrict dst,
                                                              const float* __restrict src,
                                                              std::size_t stride, int T, int d) {
  for (int e = 0; e < d * kTinyLanes; ++e) dst[e] = 0.0f;
  for (int j = 0; j < T; ++j)
    for (int e = 0; e < d; ++e) dst[e * kTinyLanes + j] = src[j * stride + e];
}

// Eight floats at p into v, and back (unaligned; by reference: a function that passes a vector
// by value is refused by GCC for the default target of the clones).
__attribute__((always_inline)) inline void load8(Vec8& v, const float* p) {
  std::memcpy(&v, p, sizeof v);
}
__attribute__((always_inline)) inline void store8(float* p, const Vec8& v) {
  std::memcpy(p, &v, sizeof v);
}

// s[t] lane j = Σ_e a_t[e] · lanes[e][j] for the T rows a_t = rows + t · stride (times `scale`
// first, rounded, as the tiles' packed queries), e increasing: the scores (rows q, lanes K) or
// dout · V (rows dout, lanes V). Always 8 rows, so that the loop unrolls and the 8 sums stay
// in registers; rows past T repeat row T - 1 (read, never used).
__attribute__((always_inline)) inline void lane_products(Vec8* __restrict s,
                                                         const float* __restrict rows,
                                                         std::size_t stride, float scale,
                                                         const float* __restrict lanes, int T,
                                                         int d) {
  const float* row[kTinyMaxT];
  for (int t = 0; t < kTinyMaxT; ++t) {
    row[t] = rows + (t < T ? t : T - 1) * stride;
    s[t] = Vec8{};
  }
  for (int e = 0; e < d; ++e) {
    Vec8 k;
    load8(k, lanes + e * kTinyLanes);
    for (int t = 0; t < kTinyMaxT; ++t) s[t] += (row[t][e] * scale) * k;
  }
}

MB_CPU_CLONES
void tiny_forward_head(float* out, float* lse, const float* qkv, const Layout& L, int b, int h,
                       float scale) {
  const int T = L.T, d = L.d;
  const std::size_t ts = L.tstride();
  alignas(32) float kt[kShortAttentionMaxHeadDim * kTinyLanes];
  transpose_to_lanes(kt, qkv + L.qkv(b, 0, 1, h), ts, T, d);
  Vec8 s[kTinyMaxT];
  lane_products(s, qkv + L.qkv(b, 0, 0, h), ts, scale, kt, T, d);
  const float* v = qkv + L.qkv(b, 0, 2, h);
  for (int t = 0; t < T; ++t) {
    alignas(32) float p[kTinyLanes];  // 8 lanes: what the row softmax reads
    store8(p, s[t]);
    const float mx = row_max<kTinyLanes>(p, t + 1);
    const float sum = exp_shifted_sum<kTinyLanes>(p, t + 1, mx);
    const float inv = 1.0f / sum;
    float* o = out + L.out(b, t, h);
    for (int e = 0; e < d; e += kTinyLanes) {
      Vec8 acc{}, vj;
      for (int j = 0; j <= t; ++j) {
        load8(vj, v + j * ts + e);
        acc += p[j] * vj;
      }
      acc *= inv;
      store8(o + e, acc);
    }
    if (lse) lse[L.lse(b, h, t)] = mx + std::log(sum);
  }
}

MB_CPU_CLONES
void tiny_backward_head(float* dqkv, const float* dout, const float* out, const float* lse,
                        const float* qkv, const Layout& L, int b, int h, float scale,
                        bool accumulate) {
  const int T = L.T, d = L.d;
  const std::size_t ts = L.tstride(), os = static_cast<std::size_t>(L.H) * d;
  const float* q = qkv + L.qkv(b, 0, 0, h);
  const float* k = qkv + L.qkv(b, 0, 1, h);
  const float* g = dout + L.out(b, 0, h);
  alignas(32) float lanes[kShortAttentionMaxHeadDim * kTinyLanes];
  Vec8 s[kTinyMaxT], dp[kTinyMaxT];
  transpose_to_lanes(lanes, k, ts, T, d);
  lane_products(s, q, ts, scale, lanes, T, d);  // S
  transpose_to_lanes(lanes, qkv + L.qkv(b, 0, 2, h), ts, T, d);
  lane_products(dp, g, os, 1.0f, lanes, T, d);  // dout · V
  // P and dS of every query, by rows (zero past the causal reach).
  alignas(32) float P[kTinyMaxT][kTinyLanes], dS[kTinyMaxT][kTinyLanes];
  for (int t = 0; t < T; ++t) {
    alignas(32) float sr[kTinyLanes], dr[kTinyLanes];
    store8(sr, s[t]);
    store8(dr, dp[t]);
    const float* y = out + L.out(b, t, h);
    const float* gt = g + t * os;
    float D = 0.0f;
#pragma omp simd reduction(+ : D)
    for (int e = 0; e < d; ++e) D += gt[e] * y[e];
    const float row_lse = lse[L.lse(b, h, t)];
#pragma omp simd
    for (int j = 0; j < kTinyLanes; ++j) {
      const float pj = masked(exp_approx(sr[j] - row_lse), j <= t, 0.0f);
      P[t][j] = pj;
      dS[t][j] = masked(pj * (dr[j] - D), j <= t, 0.0f);
    }
  }
  for (int e = 0; e < d; e += kTinyLanes) {
    // dQ_t = scale · Σ_j dS_tj k_j, keys increasing.
    for (int t = 0; t < T; ++t) {
      Vec8 acc{}, kj, gq;
      for (int j = 0; j <= t; ++j) {
        load8(kj, k + j * ts + e);
        acc += dS[t][j] * kj;
      }
      float* dst = dqkv + L.qkv(b, t, 0, h) + e;
      if (accumulate)
        load8(gq, dst);
      else
        gq = Vec8{};  // written over: the bits of adding to zeros
      gq += scale * acc;
      store8(dst, gq);
    }
    // dK_j = Σ_t dS_tj (scale q_t), dV_j = Σ_t P_tj dout_t, queries increasing from j.
    for (int j = 0; j < T; ++j) {
      Vec8 dk{}, dv{}, qt, gt;
      for (int t = j; t < T; ++t) {
        load8(qt, q + t * ts + e);
        qt *= scale;  // the scaled query, rounded (the tiles' packed operand)
        load8(gt, g + t * os + e);
        dk += dS[t][j] * qt;
        dv += P[t][j] * gt;
      }
      float* dst_k = dqkv + L.qkv(b, j, 1, h) + e;
      float* dst_v = dqkv + L.qkv(b, j, 2, h) + e;
      Vec8 gk{}, gv{};
      if (accumulate) {
        load8(gk, dst_k);
        load8(gv, dst_v);
      }
      gk += dk;
      gv += dv;
      store8(dst_k, gk);
      store8(dst_v, gv);
    }
  }
}

void check_sizes(const char* what, int B, int T, int H, int d) {
  if (B < 0 || H < 0) throw std::invalid_argument(std::string(what) + ": need B, H >= 0");
  if (!short_attention_fits(T, d))
    throw std::invalid_argument(std::string(what) + ": sequences of T = " + std::to_string(T) +
                                " with heads of d = " + std::to_string(d) +
                                " do not fit (see short_attention_fits); use attention");
}

// Runs per_head(b, h, scratch) for every (sequence, head) of the batch: one task each, shared
// among the threads in a fixed static split, each thread with its own scratch of
// `scratch_floats`. Nothing to do for an empty batch.
template <class PerHead>
void for_each_head(int B, const Layout& L, std::size_t scratch_floats, PerHead per_head) {
  const std::int64_t tasks = static_cast<std::int64_t>(B) * L.H;
  if (tasks == 0 || L.T == 0) return;
#pragma omp parallel if (tasks > 1)
  {
    std::vector<float> scratch(scratch_floats);
#pragma omp for schedule(static)
    for (std::int64_t task = 0; task < tasks; ++task)
      per_head(static_cast<int>(task / L.H), static_cast<int>(task % L.H), scratch.data());
  }
}

}  // namespace

void short_attention_forward(float* out, float* lse, const float* qkv, int B, int T, int H, int d,
                             IsaVariant variant) {
  check_sizes("short_attention_forward", B, T, H, d);
  const Layout L{T, H, d};
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  if (takes_tiny(T, d)) {
    for_each_head(B, L, 0,
                  [&](int b, int h, float*) { tiny_forward_head(out, lse, qkv, L, b, h, scale); });
    return;
  }
  const bool avx512 = runs_avx512(variant);
  const auto head = avx512 ? forward_head_avx512 : forward_head_any;
  const std::size_t scratch = forward_scratch(L, avx512 ? kRowsAvx512 : kRowsAvx2);
  for_each_head(B, L, scratch, [&](int b, int h, float* scratch) {
    head(out, lse, qkv, L, b, h, scale, scratch);
  });
}

void short_attention_backward(float* dqkv, const float* dout, const float* out, const float* lse,
                              const float* qkv, int B, int T, int H, int d, bool accumulate_dqkv,
                              IsaVariant variant) {
  check_sizes("short_attention_backward", B, T, H, d);
  const Layout L{T, H, d};
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  if (takes_tiny(T, d)) {
    for_each_head(B, L, 0, [&](int b, int h, float*) {
      tiny_backward_head(dqkv, dout, out, lse, qkv, L, b, h, scale, accumulate_dqkv);
    });
    return;
  }
  const bool avx512 = runs_avx512(variant);
  const auto head = avx512 ? backward_head_avx512 : backward_head_any;
  const std::size_t scratch = backward_scratch(L, avx512 ? kRowsAvx512 : kRowsAvx2);
  for_each_head(B, L, scratch, [&](int b, int h, float* scratch) {
    head(dqkv, dout, out, lse, qkv, L, b, h, scale, scratch, accumulate_dqkv);
  });
}

}  // namespace mb::kernels::cpu
