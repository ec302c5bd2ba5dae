// Residual add: purely memory bound, so the work is split into large contiguous chunks (one
// per thread's share of pages) and each chunk is a plain loop that GCC vectorises.
#include "cpu/residual.hpp"

#include "cpu/parallel.hpp"
#include "cpu/simd.hpp"

#include <algorithm>
#include <cstdint>

namespace mb::kernels::cpu {
namespace {

constexpr std::size_t kChunk = 1 << 15;  // 128 KiB of floats per task

// No __restrict on out: it may alias a or b; GCC's run-time alias check keeps the vector loop.
MB_CPU_CLONES
void add_chunk(float* out, const float* a, const float* b, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

MB_CPU_CLONES
void accumulate_chunk(float* __restrict d, const float* __restrict dout, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) d[i] += dout[i];
}

std::int64_t chunks(std::size_t n) { return static_cast<std::int64_t>((n + kChunk - 1) / kChunk); }

}  // namespace

void residual_forward(float* out, const float* a, const float* b, std::size_t n) {
  const std::int64_t tasks = chunks(n);
  parallel_for(tasks, tasks > 1, [&](std::int64_t t) {
    const std::size_t i0 = static_cast<std::size_t>(t) * kChunk;
    add_chunk(out + i0, a + i0, b + i0, std::min(kChunk, n - i0));
  });
}

void residual_backward(float* da, float* db, const float* dout, std::size_t n) {
  const std::int64_t tasks = chunks(n);
  parallel_for(tasks, tasks > 1, [&](std::int64_t t) {
    const std::size_t i0 = static_cast<std::size_t>(t) * kChunk;
    const std::size_t len = std::min(kChunk, n - i0);
    if (da) accumulate_chunk(da + i0, dout + i0, len);
    if (db) accumulate_chunk(db + i0, dout + i0, len);
  });
}

}  // namespace mb::kernels::cpu
