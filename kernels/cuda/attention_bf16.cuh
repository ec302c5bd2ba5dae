// Causal self-attention of bf16 precision on tensor cores: the twin of cpu/attention_bf16.hpp
// (device pointers, default stream; see common.cuh). Plain C++: no CUDA types.
//
// Same layouts and semantics as attention_forward / attention_backward (attention.cuh): qkv
// [B, T, 3, H, d], out [B, T, H, d], lse [B, H, T]; q, k and v are read rounded to bf16. The
// products inside the attention (q·kᵀ, p·V, dout·Vᵀ, pᵀ·dout, dS·K, dSᵀ·q) run on tensor cores
// with bf16 operands and fp32 accumulation; the softmax, lse and the gradients' sums stay fp32.
// A bf16 backend takes this attention instead of the fp32 one wherever
// attention_bf16_supports(d) (kernel_ops.inc).
#pragma once

namespace mb::kernels::cuda {

// The heads this attention takes: a multiple of 16 wide (the tensor cores' tile edge), at most
// 128. The rule of the CPU twin.
bool attention_bf16_supports(int d);

// out and lse are overwritten; lse may be null when no backward pass follows. Throws
// std::invalid_argument unless B, T, H >= 0 and attention_bf16_supports(d).
void attention_forward_bf16(float* out, float* lse, const float* qkv, int B, int T, int H, int d);

// dqkv [B, T, 3, H, d] += the gradient with respect to qkv, given dout and the out and lse of
// attention_forward_bf16. Deterministic (no atomics; every sum in a fixed order). Same
// argument checks as the forward.
// accumulate_dqkv false: dqkv is written, not read (the bits of adding to zeros), as the CPU.
void attention_backward_bf16(float* dqkv, const float* dout, const float* out, const float* lse,
                             const float* qkv, int B, int T, int H, int d,
                             bool accumulate_dqkv = true);

}  // namespace mb::kernels::cuda
