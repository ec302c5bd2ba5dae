// out = inp · weightᵀ + bias for a product of a few rows: cached generation's steps, one row per
// sequence. Such a product is bound by reading the weight matrix once from memory (a patch's
// global step reads the whole global stack's weights); oneDNN's GEMM streams it slower than
// this loop does (README, generation figures).
//
// A thread's chunk of weight rows (below) is read from memory once and stays in cache while
// every input row is multiplied with it. A dot product accumulates in 16 independent partial
// sums (two vector registers) and adds them in a fixed tree, so each output is one thread's
// fixed sequence of operations: the result depends neither on the number of threads nor on the
// other rows of the call.
#include "cpu/matmul_few_rows.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "cpu/parallel.hpp"
#include "cpu/simd.hpp"

namespace mb::kernels::cpu {
namespace {

// GCC's generic vectors: 8 floats, one AVX2 register (two SSE registers in the default clone,
// half an AVX-512 register in the v4 one). Written this way the accumulators stay in registers;
// as plain arrays GCC kept them on the stack.
typedef float Vec8 __attribute__((vector_size(32)));
constexpr int kVecs = 2;  // 16 lanes of partial sums per dot product
constexpr int kLanes = 8 * kVecs;
// Register blocks: R weight rows by MB input rows, R x MB x 2 accumulators. One input row takes
// 4 weight rows (8 accumulators); pairs of input rows take 3 (12 accumulators, plus 2 inputs and
// a weight: AVX2's 16 registers), so each weight load serves two rows. The blocking changes
// which outputs are computed together, never the operations of one output, so a row's bits do
// not depend on M.
constexpr int kRowsAlone = 4;
constexpr int kRowsPaired = 3;

// Unaligned 8-float load (one vmovups). A macro, not a function: a function returning a vector
// would change the default clone's ABI (-Wpsabi).
#define MB_LOAD8(v, p) __builtin_memcpy(&(v), (p), sizeof(Vec8))

// The lanes' sum as a fixed pairwise tree.
inline float sum_lanes(const Vec8 (&acc)[kVecs]) {
  const Vec8 v = acc[0] + acc[1];
  return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
}

// out[m0 + i, n0 + r] for the MB input rows from m0 and the R weight rows from n0.
template <int R, int MB>
inline __attribute__((always_inline)) void block(float* __restrict out, const float* __restrict inp,
                                                 const float* __restrict weight,
                                                 const float* __restrict bias, int K, int N, int m0,
                                                 int n0) {
  const std::size_t k_stride = static_cast<std::size_t>(K);
  const int k_full = K - K % kLanes;
  const float* __restrict w = weight + static_cast<std::size_t>(n0) * k_stride;
  const float* __restrict x = inp + static_cast<std::size_t>(m0) * k_stride;
  Vec8 acc[R][MB][kVecs] = {};
  for (int k = 0; k < k_full; k += kLanes)
    for (int v = 0; v < kVecs; ++v) {
      Vec8 xv[MB], wv;
      for (int i = 0; i < MB; ++i) MB_LOAD8(xv[i], x + i * k_stride + k + 8 * v);
      for (int r = 0; r < R; ++r) {
        MB_LOAD8(wv, w + r * k_stride + k + 8 * v);
        for (int i = 0; i < MB; ++i) acc[r][i][v] += wv * xv[i];
      }
    }
  for (int r = 0; r < R; ++r)
    for (int i = 0; i < MB; ++i) {
      float tail = 0.0f;  // the last K % 16 products, in order
      for (int k = k_full; k < K; ++k) tail += w[r * k_stride + k] * x[i * k_stride + k];
      out[static_cast<std::size_t>(m0 + i) * N + n0 + r] =
          (sum_lanes(acc[r][i]) + tail) + (bias ? bias[n0 + r] : 0.0f);
    }
}

// Weight rows [n_begin, n_end) with the MB input rows from m0: whole blocks of R, then the
// remainder one row at a time.
template <int R, int MB>
inline __attribute__((always_inline)) void row_blocks(float* __restrict out,
                                                      const float* __restrict inp,
                                                      const float* __restrict weight,
                                                      const float* __restrict bias, int K, int N,
                                                      int m0, int n_begin, int n_end) {
  int n = n_begin;
  for (; n + R <= n_end; n += R) block<R, MB>(out, inp, weight, bias, K, N, m0, n);
  for (; n < n_end; ++n) block<1, MB>(out, inp, weight, bias, K, N, m0, n);
}

// Every input row against weight rows [n_begin, n_end): pairs, then the odd one.
MB_CPU_CLONES
void rows_range(float* __restrict out, const float* __restrict inp, const float* __restrict weight,
                const float* __restrict bias, int M, int K, int N, int n_begin, int n_end) {
  int m = 0;
  for (; m + 2 <= M; m += 2)
    row_blocks<kRowsPaired, 2>(out, inp, weight, bias, K, N, m, n_begin, n_end);
  if (m < M) row_blocks<kRowsAlone, 1>(out, inp, weight, bias, K, N, m, n_begin, n_end);
}

// Threads take whole chunks of weight rows; a chunk is 64 rows (at K = 512, 128 KiB of weights),
// so a product of a few hundred kilobytes stays on one thread rather than paying for a fork.
constexpr int kChunkRows = 64;
constexpr std::int64_t kParallelMinWeights = std::int64_t{1} << 16;

}  // namespace

void matmul_few_rows_forward(float* out, const float* inp, const float* weight, const float* bias,
                             int M, int K, int N) {
  const int chunks = (N + kChunkRows - 1) / kChunkRows;
  parallel_for(chunks, static_cast<std::int64_t>(K) * N >= kParallelMinWeights, [&](int c) {
    rows_range(out, inp, weight, bias, M, K, N, c * kChunkRows, std::min(N, (c + 1) * kChunkRows));
  });
}

}  // namespace mb::kernels::cpu
