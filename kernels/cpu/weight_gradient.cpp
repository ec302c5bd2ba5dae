// Register-blocked like a GEMM micro-kernel, with the one difference that makes the sum over
// rows splittable: the accumulators start from the destination, not from zero, and the rows
// are never split between accumulators or threads. A register block of R × (V vectors)
// outputs lives in registers while a block of input rows streams past it; threads own
// disjoint output blocks. A row block's dout columns are copied into a contiguous buffer (as a
// GEMM packs its operands; read in place, the loop ran at half the speed), and so are its inp
// columns where rows are long.
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
// 24 or 32 rows of dweight by a group of kGroupColumns columns, each packing its dout columns
// (kRowBlock × 32 floats, 64 KiB) and running its register blocks down the group's
// panels (the group's packed columns, 512 KiB, stay in L2 while the tasks of the group run).
// Every output element is updated by the row blocks in order.
constexpr int kRowBlock = 512;
constexpr int kMaxTaskRows = 32;
constexpr int kGroupColumns = 256;
constexpr std::int64_t kParallelMinFlops = std::int64_t{1} << 20;

struct Shape {
  int M, K, N;
};

// dweight[0 .. R) × [0, V·lanes) (rows K apart) += the row block's products. a: this block's
// inp columns, rows `width` apart (a packed panel, or inp itself); b: the packed dout block,
// rows `b_stride` apart, this register block's columns from b.
template <class Vec, int R, int V>
inline __attribute__((always_inline)) void register_block(float* __restrict dweight,
                                                          const float* __restrict a, int width,
                                                          const float* __restrict b, int b_stride,
                                                          int rows, int K) {
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

// rows × n floats from src (rows `stride` apart) to dst (dense). The rows are short, and a
// call of memmove per row (what GCC makes of a copy loop) cost more than the copy: perf showed
// a fifth of the kernel's time in it. A row of the usual width (Width) is one fixed-size copy,
// a few vector moves; any other width goes 8 floats at a time, then one by one.
template <int Width>
inline __attribute__((always_inline)) void pack_rows(float* __restrict dst,
                                                     const float* __restrict src,
                                                     std::size_t stride, int rows, int n) {
  if (n == Width) {
    for (int i = 0; i < rows; ++i)
      __builtin_memcpy(dst + static_cast<std::size_t>(i) * Width, src + i * stride,
                       Width * sizeof(float));
    return;
  }
  for (int i = 0; i < rows; ++i) {
    float* __restrict d = dst + static_cast<std::size_t>(i) * n;
    const float* __restrict r = src + i * stride;
    int j = 0;
    for (; j + 8 <= n; j += 8) __builtin_memcpy(d + j, r + j, 8 * sizeof(float));
    for (; j < n; ++j) d[j] = r[j];
  }
}

// Rows [m0, m0 + rows) for dweight rows [n0, n0 + nr): the block's dout columns are packed
// into b, then each panel of inp columns (`panel` wide, the last one narrower) is multiplied,
// the widest vector blocks first, then narrower ones, then single columns. The panels are
// packed (panel from k0 at packed_inp + k0 · rows, rows `width` apart) or, with packed_inp
// null, read in place.
template <int TaskRows, class Wide, int W1, int W2, int W3, class Narrow, int N1, int N2, int N3>
inline __attribute__((always_inline)) void row_block(float* __restrict dweight,
                                                     const float* __restrict packed_inp,
                                                     const float* __restrict inp,
                                                     const float* __restrict dout, Shape s, int m0,
                                                     int rows, int n0, int nr, int k_begin,
                                                     int k_end, int panel, float* __restrict b) {
  constexpr int kWide = 2 * static_cast<int>(sizeof(Wide) / sizeof(float));
  constexpr int kNarrow = 2 * static_cast<int>(sizeof(Narrow) / sizeof(float));
  pack_rows<TaskRows>(b, dout + static_cast<std::size_t>(m0) * s.N + n0, s.N, rows, nr);
  for (int k0 = k_begin; k0 < k_end; k0 += panel) {
    const int width = std::min(s.K - k0, panel);
    const float* __restrict a = packed_inp ? packed_inp + static_cast<std::size_t>(k0) * rows
                                           : inp + static_cast<std::size_t>(m0) * s.K + k0;
    const int stride = packed_inp ? width : s.K;
    int c = 0;
    for (; c + kWide <= width; c += kWide)
      column_blocks<Wide, W1, W2, W3, 2>(dweight, a + c, stride, b, nr, rows, s.K, n0, k0 + c);
    for (; c + kNarrow <= width; c += kNarrow)
      column_blocks<Narrow, N1, N2, N3, 2>(dweight, a + c, stride, b, nr, rows, s.K, n0, k0 + c);
    scalar_columns(dweight, a, stride, b, nr, rows, s.K, n0, k0, c, width);
  }
}

// Panels of 16 columns: 6 × 2 vectors of 8, 12 accumulators (AVX2 has 16 registers); 4 and 2
// rows for the remainder. Tasks of 24 rows: four register blocks.
constexpr int kPanelAvx2 = 16;
constexpr int kTaskRowsAvx2 = 24;
MB_CPU_CLONES
void pack_panel_avx2(float* dst, const float* src, std::size_t stride, int rows, int width) {
  pack_rows<kPanelAvx2>(dst, src, stride, rows, width);
}
MB_CPU_CLONES
void row_block_avx2(float* dweight, const float* packed_inp, const float* inp, const float* dout,
                    Shape s, int m0, int rows, int n0, int nr, int k_begin, int k_end, float* b) {
  row_block<kTaskRowsAvx2, Vec8, 6, 4, 2, Vec8, 6, 4, 2>(
      dweight, packed_inp, inp, dout, s, m0, rows, n0, nr, k_begin, k_end, kPanelAvx2, b);
}

// Panels of 32 columns: 12 × 2 vectors of 16, 24 accumulators (AVX-512 has 32 registers); 8
// and 4 rows for the remainder; a last panel of 16 columns in AVX2-sized blocks. Tasks of 32
// rows (12 + 12 + 8): the usual widths, multiples of 128, then split evenly between threads.
constexpr int kPanelAvx512 = 32;
constexpr int kTaskRowsAvx512 = 32;
#if MB_CPU_HAS_AVX512_VARIANT
MB_CPU_AVX512
void pack_panel_avx512(float* dst, const float* src, std::size_t stride, int rows, int width) {
  pack_rows<kPanelAvx512>(dst, src, stride, rows, width);
}
MB_CPU_AVX512
void row_block_avx512(float* dweight, const float* packed_inp, const float* inp, const float* dout,
                      Shape s, int m0, int rows, int n0, int nr, int k_begin, int k_end, float* b) {
  row_block<kTaskRowsAvx512, Vec16, 12, 8, 4, Vec8, 6, 4, 2>(
      dweight, packed_inp, inp, dout, s, m0, rows, n0, nr, k_begin, k_end, kPanelAvx512, b);
}
#else
constexpr auto pack_panel_avx512 = pack_panel_avx2;
constexpr auto row_block_avx512 = row_block_avx2;
#endif

}  // namespace

void weight_gradient_in_row_order(float* dweight, const float* dout, const float* inp, int M, int K,
                                  int N, IsaVariant variant) {
  if (M < 0 || K < 0 || N < 0) throw std::invalid_argument("weight gradient: negative dimension");
  if (M == 0 || K == 0 || N == 0) return;
  const Shape s{M, K, N};
  const bool avx512 = runs_avx512(variant);
  const int panel = avx512 ? kPanelAvx512 : kPanelAvx2;
  const int panels = (K + panel - 1) / panel;
  const int task_rows = avx512 ? kTaskRowsAvx512 : kTaskRowsAvx2;
  const int row_tasks = (N + task_rows - 1) / task_rows;
  const int column_groups = (K + kGroupColumns - 1) / kGroupColumns;
  const int tasks = row_tasks * column_groups;
  // A row block's inp columns, packed once by all threads and read by every task, where the
  // rows are long: a panel's rows, read in place, would be a page or more apart. Rows of at
  // most one column group are read in place (a row block's rows then span little more than
  // L2, and the packing pass, between two barriers, cost more than it saved), and so are those
  // of a narrow dweight (N <= 256: a packed element is read by at most 8 tasks, fewer than pay
  // for the pass over the block; local FC2's 8192 x 512 -> 128 took 5.4 ms packed, 4.7 not).
  // The calling thread's buffer only grows, so a shape's later calls allocate nothing. It
  // starts on a cache line (a vector's storage is only 16-byte aligned): a panel row is two or
  // four whole lines, and a vector load that straddles two lines costs two.
  const bool pack = K > kGroupColumns && N > kGroupColumns;
  thread_local std::vector<float> packed;
  constexpr std::size_t kLineFloats = 64 / sizeof(float);
  if (pack && packed.size() < static_cast<std::size_t>(kRowBlock) * K + kLineFloats)
    packed.resize(static_cast<std::size_t>(kRowBlock) * K + kLineFloats);
  float* const packed_inp =
      pack ? packed.data() + (kLineFloats - reinterpret_cast<std::uintptr_t>(packed.data()) % 64 /
                                                sizeof(float)) %
                                 kLineFloats
           : nullptr;
  const bool parallel = std::int64_t{M} * K * N >= kParallelMinFlops;
  const auto pack_panel = avx512 ? pack_panel_avx512 : pack_panel_avx2;
  const auto run_row_block = avx512 ? row_block_avx512 : row_block_avx2;
#pragma omp parallel if (parallel)
  {
    alignas(64) float b[kRowBlock * kMaxTaskRows];
    for (int m0 = 0; m0 < M; m0 += kRowBlock) {
      const int rows = std::min(M - m0, kRowBlock);
#pragma omp for schedule(static)
      for (int p = 0; p < (pack ? panels : 0); ++p) {
        const int k0 = p * panel, width = std::min(K - k0, panel);
        float* dst = packed_inp + static_cast<std::size_t>(k0) * rows;
        pack_panel(dst, inp + static_cast<std::size_t>(m0) * K + k0, K, rows, width);
      }
      // Tasks of unequal sizes (the last one) and few of them for a small N: dynamic.
#pragma omp for schedule(dynamic)
      for (int t = 0; t < tasks; ++t) {
        // Consecutive tasks share a column group, so the threads read the same packed panels.
        const int g = t / row_tasks, n0 = (t % row_tasks) * task_rows;
        const int nr = std::min(N - n0, task_rows);
        const int k_begin = g * kGroupColumns, k_end = std::min(K, k_begin + kGroupColumns);
        run_row_block(dweight, packed_inp, inp, dout, s, m0, rows, n0, nr, k_begin, k_end, b);
      }
    }
  }
}

}  // namespace mb::kernels::cpu
