// Short-sequence causal attention on the GPU: the twin of cpu/short_attention.hpp (fp32,
// device pointers, default stream; see common.cuh). Plain C++: no CUDA types.
//
// Layouts and semantics as cuda/attention.cuh: qkv [B, T, 3, H, d], out [B, T, H, d], lse
// [B, H, T]; the backward adds into dqkv (or writes it) and is deterministic. One launch per pass, the whole
// sequence in shared memory, for the shapes short_attention_fits accepts (the CPU header
// defines it) within the current device's shared memory: on an A100 or H100 exactly the
// shapes the CPU twin accepts, on GPUs with less shared memory per block fewer.
#pragma once

#include <cstddef>

#include "cpu/short_attention.hpp"

namespace mb::kernels::cuda {

// The shared memory a block of these kernels may have on the current device: the smaller of
// cpu::kShortAttentionMaxSmemBytes and what the device lets a block opt in to
// (cudaDevAttrMaxSharedMemoryPerBlockOptin: 163 KiB on A100, 227 KiB on H100, 99 KiB on
// sm_86 and sm_89).
std::size_t short_attention_max_smem_bytes();

// Whether the kernels take sequences of T with heads of d on the current device.
bool short_attention_fits(int T, int d);

// out and lse are overwritten; lse may be null when no backward pass follows. Throws
// std::invalid_argument, naming T, d and the shared memory needed and allowed, unless
// short_attention_fits(T, d) (this device's) and B, H >= 0.
void short_attention_forward(float* out, float* lse, const float* qkv, int B, int T, int H, int d);

// dqkv [B, T, 3, H, d] += the gradient with respect to qkv, given dout and the out and lse of a
// forward. Deterministic (no atomics): dQ sums over keys, dK and dV over queries, each in
// increasing order, so two runs give identical bits. Same argument checks as the forward.
// accumulate_dqkv false: dqkv is written, not read (the bits of adding to zeros), as the CPU.
void short_attention_backward(float* dqkv, const float* dout, const float* out, const float* lse,
                              const float* qkv, int B, int T, int H, int d,
                              bool accumulate_dqkv = true);

}  // namespace mb::kernels::cuda
