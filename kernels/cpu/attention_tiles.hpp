// The pieces the two CPU attentions share (attention.cpp: blocked, online softmax;
// short_attention.cpp: a whole short sequence at once): the layouts' index arithmetic, a
// register-tiled micro-kernel for the small matrix products of a block pair, and the packing
// of a head's rows into its operands. Internal to kernels/cpu/.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "cpu/simd.hpp"

namespace mb::kernels::cpu::attention_tiles {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// A row of scores' softmax pieces, over whole groups of Lanes lanes (16 for the tiles: one
// AVX-512 register, two AVX2 ones, whichever the code is compiled for; the T <= 8 path takes
// 8): the row must hold round_up(n, Lanes) initialised floats (the tiles write whole NR = 16
// columns), and the lanes past n are read and masked out (with integer masks: a
// floating-point select would keep GCC from vectorising, see exp_approx). Row by row with an
// `omp simd` loop over n, the last n % 8 went through a scalar loop, a scalar exp_approx each:
// a good part of the softmax's time in the short rows of a causal block.
constexpr int kSoftmaxLanes = 16;

// x where keep, else the pattern `other` (both bit patterns).
inline float masked(float x, bool keep, float other) {
  const std::int32_t m = -static_cast<std::int32_t>(keep);
  return std::bit_cast<float>((std::bit_cast<std::int32_t>(x) & m) |
                              (std::bit_cast<std::int32_t>(other) & ~m));
}

// The largest of row[0..n) (-inf for n = 0): a row of scores' softmax shift.
template <int Lanes = kSoftmaxLanes>
inline float row_max(const float* __restrict row, int n) {
  float part[Lanes];
  for (int i = 0; i < Lanes; ++i) part[i] = kNegInf;
  for (int j0 = 0; j0 < n; j0 += Lanes) {
#pragma omp simd
    for (int i = 0; i < Lanes; ++i) {
      const float v = masked(row[j0 + i], j0 + i < n, kNegInf);
      part[i] = part[i] > v ? part[i] : v;
    }
  }
  float mx = part[0];
  for (int i = 1; i < Lanes; ++i) mx = mx > part[i] ? mx : part[i];
  return mx;
}

// row[j] = exp(row[j] - shift) for j < n (exp_approx), 0 for n <= j < round_up(n, Lanes), and
// the sum of row[0..n): Lanes partial sums, lane i over j = i mod Lanes in increasing order,
// then added in one fixed tree (16 lanes: i and i + 8 first), so that every instruction set
// gives the same bits.
template <int Lanes = kSoftmaxLanes>
inline float exp_shifted_sum(float* __restrict row, int n, float shift) {
  static_assert(Lanes == 8 || Lanes == 16, "the tree below adds 8 or 16 partial sums");
  float part[Lanes] = {};
  for (int j0 = 0; j0 < n; j0 += Lanes) {
#pragma omp simd
    for (int i = 0; i < Lanes; ++i) {
      const float e = masked(exp_approx(row[j0 + i] - shift), j0 + i < n, 0.0f);
      row[j0 + i] = e;
      part[i] += e;
    }
  }
  if constexpr (Lanes == 16)
    for (int i = 0; i < 8; ++i) part[i] += part[i + 8];
  return ((part[0] + part[4]) + (part[2] + part[6])) + ((part[1] + part[5]) + (part[3] + part[7]));
}

// Micro-kernel tile: MR rows by NR columns of the result live in registers (4 x 16 floats:
// four AVX-512 or eight AVX2 registers) while the contraction runs.
constexpr int MR = 4;
constexpr int NR = 16;

constexpr int round_up(int x, int m) { return (x + m - 1) / m * m; }

// Eight floats as a GCC vector: one AVX register. Explicit vectors are what it takes to keep
// the MR x NR accumulator in registers; with a plain float array GCC vectorises the inner
// loop but loads and stores the accumulator on every step of the contraction. Eight, not
// sixteen, in code compiled for every clone: GCC lowers vectors wider than the target's
// registers through memory, and AVX2 is the common case (the AVX-512 clone runs the same code
// on ymm registers). Code compiled for AVX-512 only (MB_CPU_AVX512) takes Vec16.
typedef float Vec8 __attribute__((vector_size(8 * sizeof(float))));
typedef float Vec16 __attribute__((vector_size(16 * sizeof(float))));

// The Rows rows from m0 by V vectors of columns from n0 (see gemm_tile).
template <bool kTransA, bool kAccumulate, class Vec, int V, int Rows>
__attribute__((always_inline)) inline void gemm_block(float* __restrict C, int ldc,
                                                      const float* __restrict A, int lda,
                                                      const float* __restrict B, int ldb, int K,
                                                      int m0, int n0) {
  constexpr int kLanes = sizeof(Vec) / sizeof(float);
  Vec acc[Rows][V];
  for (int i = 0; i < Rows; ++i)
    for (int v = 0; v < V; ++v) {
      if (kAccumulate)
        std::memcpy(&acc[i][v], C + static_cast<std::size_t>(m0 + i) * ldc + n0 + kLanes * v,
                    sizeof(Vec));
      else
        acc[i][v] = Vec{};
    }
  for (int k = 0; k < K; ++k) {
    // One memcpy per vector: GCC turns each into a single unaligned load (a copy of the whole
    // array went through the stack, stalling on store forwarding).
    Vec b[V];
    for (int v = 0; v < V; ++v)
      std::memcpy(&b[v], B + static_cast<std::size_t>(k) * ldb + n0 + kLanes * v, sizeof(Vec));
    for (int i = 0; i < Rows; ++i) {
      const float a = kTransA ? A[static_cast<std::size_t>(k) * lda + m0 + i]
                              : A[static_cast<std::size_t>(m0 + i) * lda + k];
      for (int v = 0; v < V; ++v) acc[i][v] += a * b[v];
    }
  }
  for (int i = 0; i < Rows; ++i)
    for (int v = 0; v < V; ++v)
      std::memcpy(C + static_cast<std::size_t>(m0 + i) * ldc + n0 + kLanes * v, &acc[i][v],
                  sizeof(Vec));
}

// C[M,N] (+)= A[M,K] · B[K,N], with M a multiple of Rows (MR unless a caller's register budget
// allows more) and N a multiple of NR. A is read as
// A[m * lda + k], or A[k * lda + m] when kTransA; B as B[k * ldb + n]; C as C[m * ldc + n].
// Blocks of Rows rows by two vectors of columns (16 with Vec8, 32 with Vec16, then a last 16
// where N leaves them); every output is one accumulator's sum over k in increasing order, so
// the vector type changes no bit.
//
// Always inlined: its callers are target_clones functions (MB_CPU_CLONES), and only code
// inlined into a clone is compiled for the clone's instruction set. GCC kept one out-of-line
// copy of this template for the default target (SSE2: two-lane-pair mulps/addps with the
// accumulator spilled to the stack) and called it from the AVX2 and AVX-512 clones alike.
template <bool kTransA, bool kAccumulate, class Vec = Vec8, int Rows = MR>
__attribute__((always_inline)) inline void gemm_tile(float* __restrict C, int ldc,
                                                     const float* __restrict A, int lda,
                                                     const float* __restrict B, int ldb, int M,
                                                     int N, int K) {
  constexpr int kLanes = sizeof(Vec) / sizeof(float);
  static_assert(NR % kLanes == 0, "a vector must not straddle two NR tiles");
  for (int m0 = 0; m0 < M; m0 += Rows) {
    int n0 = 0;
    for (; n0 + 2 * kLanes <= N; n0 += 2 * kLanes)
      gemm_block<kTransA, kAccumulate, Vec, 2, Rows>(C, ldc, A, lda, B, ldb, K, m0, n0);
    for (; n0 < N; n0 += kLanes)
      gemm_block<kTransA, kAccumulate, Vec, 1, Rows>(C, ldc, A, lda, B, ldb, K, m0, n0);
  }
}

// Index helpers for the documented layouts.
struct Layout {
  int T, H, d;
  std::size_t qkv(int b, int t, int which, int h) const {  // which: 0 q, 1 k, 2 v
    return ((static_cast<std::size_t>(b) * T + t) * 3 + which) * H * d +
           static_cast<std::size_t>(h) * d;
  }
  std::size_t out(int b, int t, int h) const {
    return (static_cast<std::size_t>(b) * T + t) * H * d + static_cast<std::size_t>(h) * d;
  }
  std::size_t lse(int b, int h, int t) const {
    return (static_cast<std::size_t>(b) * H + h) * T + t;
  }
  std::size_t tstride() const { return 3 * static_cast<std::size_t>(H) * d; }  // qkv positions
};

// Rows src + c * stride (c < n, d floats each) into dst[c][0..dp), times `scale`; columns past
// d and rows n..rows are zeroed.
inline void pack_rows(float* __restrict dst, int dp, const float* __restrict src,
                      std::size_t stride, int n, int rows, int d, float scale) {
  for (int c = 0; c < rows; ++c) {
    float* __restrict row = dst + static_cast<std::size_t>(c) * dp;
    if (c < n) {
      const float* __restrict s = src + c * stride;
      for (int e = 0; e < d; ++e) row[e] = s[e] * scale;
      for (int e = d; e < dp; ++e) row[e] = 0.0f;
    } else {
      for (int e = 0; e < dp; ++e) row[e] = 0.0f;
    }
  }
}

// Rows src + c * stride (c < n) transposed into dst[e][c] (leading dimension ld) for e < dp;
// columns n..cols and rows past d are zeroed.
//
// Sixteen source rows at a time, so that the stores run along dst's rows (a cache line of 16
// floats each) while the 16 rows being read stay in L1. Row by row (one store per row of dst,
// a cache line apart) this copy took about 30% of a global head's forward pass (T = 256,
// d = 64: dst is 64 KiB, more than L1 holds).
inline void pack_transposed(float* __restrict dst, int ld, const float* __restrict src,
                            std::size_t stride, int n, int cols, int d, int dp) {
  constexpr int kBlock = 16;
  for (int c0 = 0; c0 < n; c0 += kBlock) {
    const int cn = n - c0 < kBlock ? n - c0 : kBlock;
    const float* __restrict s = src + c0 * stride;
    for (int e = 0; e < d; ++e) {
      float* __restrict row = dst + static_cast<std::size_t>(e) * ld + c0;
      for (int c = 0; c < cn; ++c) row[c] = s[c * stride + e];
    }
  }
  for (int e = 0; e < d; ++e)
    for (int c = n; c < cols; ++c) dst[static_cast<std::size_t>(e) * ld + c] = 0.0f;
  for (int e = d; e < dp; ++e)
    for (int c = 0; c < cols; ++c) dst[static_cast<std::size_t>(e) * ld + c] = 0.0f;
}

}  // namespace mb::kernels::cpu::attention_tiles
