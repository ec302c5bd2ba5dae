// Inverted dropout. The mask is a 64-bit hash of (key, offset + i), redrawn in the backward
// pass rather than stored; the hash, key and threshold come from cpu/dropout.hpp itself, so
// the two backends cannot drift apart. The scale is computed once on the host exactly as the
// CPU does (1.0f / (1.0f - p) in fp32), so the forward output equals the CPU's bit for bit.
#include "cuda/dropout.cuh"

#include "cpu/dropout.hpp"
#include "cuda/common.cuh"

#include <stdexcept>
#include <string>

namespace mb::kernels::cuda {
namespace {

void check_p(float p, const char* what) {
  if (!(p >= 0.0f && p < 1.0f))
    throw std::invalid_argument(std::string(what) + ": dropout probability " + std::to_string(p) +
                                " is outside [0, 1)");
}

// keep · scale is 0 or scale exactly; the product with inp is one rounding, as on the CPU.
// out may alias inp: each thread reads element i before writing it.
__global__ void dropout_forward_kernel(float* out, const float* inp, std::size_t n,
                                       std::uint64_t key, std::uint64_t offset,
                                       std::uint32_t threshold, float scale) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const float keep = static_cast<float>(cpu::dropout_bits(key, offset + i) >= threshold);
    out[i] = inp[i] * (keep * scale);
  }
}

__global__ void dropout_backward_kernel(float* dinp, const float* dout, std::size_t n,
                                        std::uint64_t key, std::uint64_t offset,
                                        std::uint32_t threshold, float scale) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const float keep = static_cast<float>(cpu::dropout_bits(key, offset + i) >= threshold);
    dinp[i] = dout[i] * (keep * scale) + 0.0f;  // a -0 stored as +0, as the CPU twin
  }
}

}  // namespace

void dropout_forward(float* out, const float* inp, std::size_t n, float p, std::uint64_t seed,
                     std::uint64_t offset) {
  check_p(p, "dropout_forward");
  if (n == 0) return;
  if (p == 0.0f) {
    if (out != inp)
      MB_CUDA_CHECK(cudaMemcpyAsync(out, inp, n * sizeof(float), cudaMemcpyDeviceToDevice, 0));
    return;
  }
  const std::uint64_t key = cpu::dropout_key(seed);
  const std::uint32_t threshold = cpu::dropout_threshold(p);
  const float scale = 1.0f / (1.0f - p);
  dropout_forward_kernel<<<detail::grid_size(n), detail::kBlock>>>(out, inp, n, key, offset,
                                                                   threshold, scale);
  MB_CUDA_CHECK_LAUNCH();
}

void dropout_backward(float* dinp, const float* dout, std::size_t n, float p, std::uint64_t seed,
                      std::uint64_t offset) {
  check_p(p, "dropout_backward");
  if (n == 0) return;
  const std::uint64_t key = cpu::dropout_key(seed);
  const std::uint32_t threshold = cpu::dropout_threshold(p);
  const float scale = 1.0f / (1.0f - p);  // exactly 1 for p = 0, and every element is kept
  dropout_backward_kernel<<<detail::grid_size(n), detail::kBlock>>>(dinp, dout, n, key, offset,
                                                                    threshold, scale);
  MB_CUDA_CHECK_LAUNCH();
}

}  // namespace mb::kernels::cuda
