// Inverted dropout on the GPU: the twin of cpu/dropout.hpp (fp32, device pointers, default
// stream; see common.cuh). The mask is the CPU's counter-based mask, drawn by the same inline
// functions (cpu/dropout.hpp marks them __host__ __device__ under nvcc), so CPU and GPU keep
// and drop exactly the same elements for the same (p, seed, offset). Plain C++: no CUDA types.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mb::kernels::cuda {

// out[i] = inp[i] · keep(offset + i) / (1 - p) for i < n, the factor computed in fp32 as
// 1.0f / (1.0f - p). p must lie in [0, 1) (std::invalid_argument otherwise); p = 0 copies.
// out is overwritten and may equal inp (in place).
void dropout_forward(float* out, const float* inp, std::size_t n, float p, std::uint64_t seed,
                     std::uint64_t offset);

// dinp[i] = dout[i] · keep(offset + i) / (1 - p), with the same mask as the forward call with
// the same (p, seed, offset); dinp written, not read, a dropped element +0, as the CPU twin.
void dropout_backward(float* dinp, const float* dout, std::size_t n, float p, std::uint64_t seed,
                      std::uint64_t offset);

}  // namespace mb::kernels::cuda
