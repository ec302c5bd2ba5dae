// fp32 → bfloat16 conversion, padding of bf16 rows, and bf16 → fp32 (see bf16.cuh).
#include "cuda/bf16.cuh"

#include "cpu/bf16.hpp"  // bf16_value, __host__ __device__

#include "cuda/common.cuh"

#include <cuda_bf16.h>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace mb::kernels::cuda {
namespace {

// The bits of an element in dst: converted from fp32, or copied from bf16.
__device__ std::uint16_t bf16_of(float x) { return __bfloat16_as_ushort(__float2bfloat16_rn(x)); }
__device__ std::uint16_t bf16_of(std::uint16_t bits) { return bits; }

// Rows are walked by blockIdx.y (grid-stride, so any number of rows fits the 65535 limit of
// gridDim.y), the padded row by the threads along x (grid-stride too): consecutive threads
// read consecutive source elements and write consecutive bf16 values, so both sides are
// coalesced, and no thread divides a flat index by ld.
template <class Source>
__global__ void padded_bf16_kernel(std::uint16_t* __restrict__ dst, const Source* __restrict__ src,
                                   std::size_t rows, std::size_t cols, std::size_t ld) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const Source* s = src + r * cols;
    std::uint16_t* d = dst + r * ld;
    for (std::size_t c = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < ld;
         c += stride)
      d[c] = c < cols ? bf16_of(s[c]) : static_cast<std::uint16_t>(0);
  }
}

template <class Source>
void launch_padded(std::uint16_t* dst, const Source* src, std::size_t rows, std::size_t cols,
                   std::size_t ld, const char* name) {
  if (ld < cols)
    throw std::invalid_argument(std::string(name) + ": leading dimension below the column count");
  if (rows == 0 || ld == 0) return;
  // x: enough blocks to cover a row once (at most kMaxBlocks); y: rows, bounded so that the
  // whole grid stays within about kMaxBlocks blocks (and gridDim.y within its limit).
  const unsigned gx = detail::grid_size(ld);
  const std::size_t max_y = std::max<std::size_t>(1, detail::kMaxBlocks / gx);
  const auto gy = static_cast<unsigned>(std::min<std::size_t>({rows, max_y, 65535}));
  padded_bf16_kernel<<<dim3(gx, gy), detail::kBlock>>>(dst, src, rows, cols, ld);
  MB_CUDA_CHECK_LAUNCH();
}

// Elementwise, grid-stride: a bf16 pattern is the upper half of its fp32 value.
__global__ void from_bf16_kernel(float* __restrict__ dst, const std::uint16_t* __restrict__ src,
                                 std::size_t n) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride)
    dst[i] = cpu::bf16_value(src[i]);
}

}  // namespace

void to_bf16(std::uint16_t* dst, const float* src, std::size_t rows, std::size_t cols,
             std::size_t ld) {
  launch_padded(dst, src, rows, cols, ld, "to_bf16");
}

void pad_bf16(std::uint16_t* dst, const std::uint16_t* src, std::size_t rows, std::size_t cols,
              std::size_t ld) {
  launch_padded(dst, src, rows, cols, ld, "pad_bf16");
}

void from_bf16(float* dst, const std::uint16_t* src, std::size_t n) {
  if (n == 0) return;
  from_bf16_kernel<<<detail::grid_size(n), detail::kBlock>>>(dst, src, n);
  MB_CUDA_CHECK_LAUNCH();
}

}  // namespace mb::kernels::cuda
