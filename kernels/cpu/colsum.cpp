// Ordered reduction of per-task partial column sums (see colsum.hpp).
#include "cpu/colsum.hpp"

#include "cpu/simd.hpp"

#include <algorithm>

namespace mb::kernels::cpu::detail {
namespace {

MB_CPU_CLONES
void add_block(float* __restrict dst, const float* __restrict partial, int tasks,
               std::size_t stride, int c0, int c1) {
  for (int t = 0; t < tasks; ++t) {
    const float* __restrict p = partial + t * stride;
    for (int i = c0; i < c1; ++i) dst[i] += p[i];
  }
}

}  // namespace

void add_partials(float* dst, const float* partial, int tasks, std::size_t stride, int C,
                  bool parallel) {
  // 256 columns per block: one block streams a few KiB per task, enough to amortise the loop.
  constexpr int kCols = 256;
  const int blocks = (C + kCols - 1) / kCols;
#pragma omp parallel for schedule(static) if (parallel && blocks > 1)
  for (int b = 0; b < blocks; ++b)
    add_block(dst, partial, tasks, stride, b * kCols, std::min(C, (b + 1) * kCols));
}

}  // namespace mb::kernels::cpu::detail
