// fp32 → bf16 patterns and back on the CPU (see bf16.hpp): flat loops, chunked across threads
// for the long single rows a model's whole parameter buffer or a saved activation makes.
#include "cpu/bf16.hpp"

#include "cpu/parallel.hpp"
#include "cpu/simd.hpp"

#include <algorithm>
#include <cstdint>
#include <stdexcept>

namespace mb::kernels::cpu {
namespace {

constexpr std::size_t kChunk = std::size_t{1} << 14;

MB_CPU_CLONES
void to_bf16_block(std::uint16_t* __restrict dst, const float* __restrict src, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) dst[i] = bf16_bits(src[i]);
}

MB_CPU_CLONES
void from_bf16_block(float* __restrict dst, const std::uint16_t* __restrict src, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) dst[i] = bf16_value(src[i]);
}

}  // namespace

void to_bf16(std::uint16_t* dst, const float* src, std::size_t rows, std::size_t cols,
             std::size_t ld) {
  if (ld < cols) throw std::invalid_argument("to_bf16: leading dimension below the column count");
  const std::size_t chunks_per_row = (cols + kChunk - 1) / kChunk;
  const auto tasks = static_cast<std::int64_t>(rows * chunks_per_row);
  parallel_for(tasks, tasks > 1, [&](std::int64_t k) {
    const std::size_t r = static_cast<std::size_t>(k) / chunks_per_row;
    const std::size_t c0 = static_cast<std::size_t>(k) % chunks_per_row * kChunk;
    to_bf16_block(dst + r * ld + c0, src + r * cols + c0, std::min(kChunk, cols - c0));
  });
  for (std::size_t r = 0; r < rows; ++r) std::fill(dst + r * ld + cols, dst + (r + 1) * ld, 0);
}

void from_bf16(float* dst, const std::uint16_t* src, std::size_t n) {
  const auto tasks = static_cast<std::int64_t>((n + kChunk - 1) / kChunk);
  parallel_for(tasks, tasks > 1, [&](std::int64_t k) {
    const std::size_t i0 = static_cast<std::size_t>(k) * kChunk;
    from_bf16_block(dst + i0, src + i0, std::min(kChunk, n - i0));
  });
}

}  // namespace mb::kernels::cpu
