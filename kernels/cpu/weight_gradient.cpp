// Register-blocked like a GEMM micro-kernel, with the one difference that makes the sum over
// rows splittable: the accumulators start from the destination, not from zero, and the rows
// are never split between accumulators or threads. A register block of R × (V vectors)
// outputs lives in registers while a block of input rows streams past it; threads own
// disjoint output blocks. The operands of a row block are first copied into contiguous
// buffers (as a GEMM packs them): read in place, every row of a block is a new cache line of
// each operand, and the loop ran at half the speed of the packed one.
//
// The blocking (and the ISA variant) changes which outputs are computed together, never the
// sequence of one output, so the AVX2 and AVX-512 variants give the same bits (both fuse the
// multiply-add; the default clone, for machines without FMA, rounds the product first).
#include "cpu/weight_gradient.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "cpu/simd.hpp"

namespace mb::kernels::cpu {
namespace {

// GCC's generic vectors (as in matmul_few_rows.cpp): 8 floats (an AVX2 register) or 16 (an
// AVX-512 register). Loads and stores through memcpy: unaligned, and no vector-returning
// functions (which would change the default clone's ABI, -Wpsabi).
typedef float Vec8 __attribute__((vector_size(32)));
typedef float Vec16 __attribute__((vector_size(64)));

// The loops of a GEMM (Goto's): for each block of kRowBlock input rows, in order, the inp
// columns are packed into panels (by all threads, once), then the threads take tasks of
// kTaskRows rows of dweight, each packing its dout columns (kRowBlock × kTaskRows floats,
// 24 KiB: L1) and running its register blocks down every panel (a panel of kRowBlock × 32
// floats, 32 KiB, comes from L2). Every output element is updated by the row blocks in order.
constexpr int kRowBlock = 256;
constexpr int kTaskRows = 24;
constexpr std::int64_t kParallelMinFlops = std::int64_t{1} << 20;

struct Shape {
  int M, K, N;
};

// dweight[n0 .. n0+R) × [k0, k0 + V·lanes) += the row block's products. a: the packed inp
// panel, `width` floats per row (the panel's columns from k0 at a + (k0 - panel_k0)); b: the
// packed dout block, `b_stride` floats per row, this register block's columns from b.
template <class Vec, int R, int V>
inline __attribute__((always_inline)) void register_block(float* __restrict dweight,
                                                          const float* __restrict a, int width,
                                                          const float* __restrict b,
                                                          int b_stride, int rows, int K) {
  constexpr int kLanes = sizeof(Vec) / sizeof(float);
  const std::size_t ks = static_cast<std::size_t>(K);
  Vec acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v)
      __builtin_memcpy(&acc[r][v], dweight + r * ks + v * kLanes, sizeof(Vec));
  for (int m = 0; m < rows; ++m) {
    Vec x[V];
    for (int v = 0; v < V; ++v)
      __builtin_memcpy(&x[v], a + static_cast<std::size_t>(m) * width + v * kLanes, sizeof(Vec));
    const float* __restrict g = b + static_cast<std::size_t>(m) * b_stride;
    for (int r = 0; r < R; ++r) {
      const float s = g[r];
      for (int v = 0; v < V; ++v) acc[r][v] += s * x[v];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v)
      __builtin_memcpy(dweight + r * ks + v * kLanes, &acc[r][v], sizeof(Vec));
}

// The task's columns [k0, k0 + V·lanes) in register blocks of R dweight rows, the rest in
// blocks of R2 (< R) rows, then R3, then single rows: N is usually a multiple of 8, so a
// remainder is rarely left to single rows, which load the inputs for one row's FMAs.
template <class Vec, int R, int R2, int R3, int V>
inline __attribute__((always_inline)) void column_blocks(float* __restrict dweight,
                                                         const float* __restrict a, int width,
                                                         const float* __restrict b, int nr,
                                                         int rows, int K, int n0, int k0) {
  const std::size_t ks = static_cast<std::size_t>(K);
  int r = 0;
  for (; r + R <= nr; r += R)
    register_block<Vec, R, V>(dweight + (n0 + r) * ks + k0, a, width, b + r, nr, rows, K);
  for (; r + R2 <= nr; r += R2)
    register_block<Vec, R2, V>(dweight + (n0 + r) * ks + k0, a, width, b + r, nr, rows, K);
  for (; r + R3 <= nr; r += R3)
    register_block<Vec, R3, V>(dweight + (n0 + r) * ks + k0, a, width, b + r, nr, rows, K);
  for (; r < nr; ++r)
    register_block<Vec, 1, V>(dweight + (n0 + r) * ks + k0, a, width, b + r, nr, rows, K);
}

// One output element, the same sequence, for columns no vector block covers.
inline void scalar_columns(float* __restrict dweight, const float* __restrict a, int width,
                           const float* __restrict b, int nr, int rows, int K, int n0, int k0,
                           int c_from, int c_to) {
  const std::size_t ks = static_cast<std::size_t>(K);
  for (int r = 0; r < nr; ++r)
    for (int c = c_from; c < c_to; ++c) {
      float acc = dweight[(n0 + r) * ks + k0 + c];
      for (int m = 0; m < rows; ++m)
        acc += b[static_cast<std::size_t>(m) * nr + r] * a[static_cast<std::size_t>(m) * width + c];
      dweight[(n0 + r) * ks + k0 + c] = acc;
    }
}

// dst[0 .. n) = src[0 .. n) in 8-float moves. The rows are short, so a call of memmove per row
// costs more than the copy: GCC would turn this loop into one (perf showed 7% of a training
// step in memmove) unless told not to.
__attribute__((optimize("no-tree-loop-distribute-patterns"))) inline void copy_row(
    float* __restrict dst, const float* __restrict src, int n) {
  int j = 0;
  for (; j + 8 <= n; j += 8) {
    Vec8 v;
    __builtin_memcpy(&v, src + j, sizeof(Vec8));
    __builtin_memcpy(dst + j, &v, sizeof(Vec8));
  }
  for (; j < n; ++j) dst[j] = src[j];
}

// Rows [m0, m0 + rows) for dweight rows [n0, n0 + nr): the block's dout columns are packed
// into b, then each panel of packed inp columns (`panel` wide, the last one narrower; panel
// from k0 at packed_inp + k0 · rows) is multiplied, the widest vector blocks first, then
// narrower ones, then single columns.
template <class Wide, int W1, int W2, int W3, class Narrow, int N1, int N2, int N3>
inline __attribute__((always_inline)) void row_block(float* __restrict dweight,
                                                     const float* __restrict packed_inp,
                                                     const float* __restrict dout, Shape s,
                                                     int m0, int rows, int n0, int nr, int panel,
                                                     float* __restrict b) {
  constexpr int kWide = 2 * static_cast<int>(sizeof(Wide) / sizeof(float));
  constexpr int kNarrow = 2 * static_cast<int>(sizeof(Narrow) / sizeof(float));
  for (int i = 0; i < rows; ++i)
    copy_row(b + i * nr, dout + static_cast<std::size_t>(m0 + i) * s.N + n0, nr);
  for (int k0 = 0; k0 < s.K; k0 += panel) {
    const int width = std::min(s.K - k0, panel);
    const float* __restrict a = packed_inp + static_cast<std::size_t>(k0) * rows;
    int c = 0;
    for (; c + kWide <= width; c += kWide)
      column_blocks<Wide, W1, W2, W3, 2>(dweight, a + c, width, b, nr, rows, s.K, n0, k0 + c);
    for (; c + kNarrow <= width; c += kNarrow)
      column_blocks<Narrow, N1, N2, N3, 2>(dweight, a + c, width, b, nr, rows, s.K, n0, k0 + c);
    scalar_columns(dweight, a, width, b, nr, rows, s.K, n0, k0, c, width);
  }
}

// Panels of 16 columns: 6 × 2 vectors of 8, 12 accumulators (AVX2 has 16 registers); 4 and 2
// rows for the remainder.
constexpr int kPanelAvx2 = 16;
MB_CPU_CLONES
void row_block_avx2(float* dweight, const float* packed_inp, const float* dout, Shape s, int m0,
                    int rows, int n0, int nr, float* b) {
  row_block<Vec8, 6, 4, 2, Vec8, 6, 4, 2>(dweight, packed_inp, dout, s, m0, rows, n0, nr,
                                          kPanelAvx2, b);
}

// Panels of 32 columns: 12 × 2 vectors of 16, 24 accumulators (AVX-512 has 32 registers); 8
// and 4 rows for the remainder; a last panel of 16 columns in AVX2-sized blocks.
constexpr int kPanelAvx512 = 32;
#if MB_CPU_HAS_AVX512_VARIANT
MB_CPU_AVX512
void row_block_avx512(float* dweight, const float* packed_inp, const float* dout, Shape s, int m0,
                      int rows, int n0, int nr, float* b) {
  row_block<Vec16, 12, 8, 4, Vec8, 6, 4, 2>(dweight, packed_inp, dout, s, m0, rows, n0, nr,
                                            kPanelAvx512, b);
}
#endif

}  // namespace

void weight_gradient_in_row_order(float* dweight, const float* dout, const float* inp, int M, int K,
                                  int N) {
  if (M < 0 || K < 0 || N < 0) throw std::invalid_argument("weight gradient: negative dimension");
  if (M == 0 || K == 0 || N == 0) return;
  const Shape s{M, K, N};
  const bool avx512 = cpu_has_avx512();
  const int panel = avx512 ? kPanelAvx512 : kPanelAvx2;
  const int panels = (K + panel - 1) / panel;
  const int tasks = (N + kTaskRows - 1) / kTaskRows;
  // A row block's inp columns, packed once by all threads and read by every task. The calling
  // thread's buffer only grows, so a shape's later calls allocate nothing.
  thread_local std::vector<float> packed;
  if (packed.size() < static_cast<std::size_t>(kRowBlock) * K)
    packed.resize(static_cast<std::size_t>(kRowBlock) * K);
  float* const packed_inp = packed.data();
  const bool parallel = std::int64_t{M} * K * N >= kParallelMinFlops;
#pragma omp parallel if (parallel)
  {
    alignas(64) float b[kRowBlock * kTaskRows];
    for (int m0 = 0; m0 < M; m0 += kRowBlock) {
      const int rows = std::min(M - m0, kRowBlock);
#pragma omp for schedule(static)
      for (int p = 0; p < panels; ++p) {
        const int k0 = p * panel, width = std::min(K - k0, panel);
        float* dst = packed_inp + static_cast<std::size_t>(k0) * rows;
        for (int i = 0; i < rows; ++i)
          copy_row(dst + i * width, inp + static_cast<std::size_t>(m0 + i) * K + k0, width);
      }
      // Tasks of unequal sizes (the last one) and few of them for a small N: dynamic.
#pragma omp for schedule(dynamic)
      for (int t = 0; t < tasks; ++t) {
        const int n0 = t * kTaskRows, nr = std::min(N - n0, kTaskRows);
#if MB_CPU_HAS_AVX512_VARIANT
        if (avx512) {
          row_block_avx512(dweight, packed_inp, dout, s, m0, rows, n0, nr, b);
          continue;
        }
#endif
        row_block_avx2(dweight, packed_inp, dout, s, m0, rows, n0, nr, b);
      }
    }
  }
}

}  // namespace mb::kernels::cpu
