// Short-sequence causal attention on the GPU: the twin of cpu/short_attention.hpp (fp32,
// device pointers, default stream; see common.cuh). Plain C++: no CUDA types.
//
// Layouts and semantics as cuda/attention.cuh: qkv [B, T, 3, H, d], out [B, T, H, d], lse
// [B, H, T]; the backward adds into dqkv and is deterministic. One launch per pass, the whole
// sequence in shared memory, for the shapes short_attention_fits accepts (the CPU header
// defines it, so the two twins accept exactly the same shapes).
#pragma once

#include "cpu/short_attention.hpp"

namespace mb::kernels::cuda {

using cpu::short_attention_fits;

// out and lse are overwritten; lse may be null when no backward pass follows. Throws
// std::invalid_argument, naming T and d, unless short_attention_fits(T, d) and B, H >= 0.
void short_attention_forward(float* out, float* lse, const float* qkv, int B, int T, int H,
                             int d);

// dqkv [B, T, 3, H, d] += the gradient with respect to qkv, given dout and the out and lse of a
// forward. Deterministic (no atomics): dQ sums over keys, dK and dV over queries, each in
// increasing order, so two runs give identical bits. Same argument checks as the forward.
void short_attention_backward(float* dqkv, const float* dout, const float* out,
                              const float* lse, const float* qkv, int B, int T, int H, int d);

}  // namespace mb::kernels::cuda
