// AdamW step and global gradient-norm clipping on the GPU: the twin of cpu/adamw.hpp (fp32
// buffers, device pointers, default stream; see common.cuh). Plain C++: no CUDA types.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mb::kernels::cuda {

// One AdamW step over n parameters, as PyTorch's torch.optim.AdamW:
//   m = b1 m + (1 - b1) g,   v = b2 v + (1 - b2) g²
//   p -= lr · ( m / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps)  +  weight_decay · p )
// t is the 1-based step number (std::invalid_argument otherwise). params_bf16, when not null,
// receives the bf16 copy of the updated parameters (__float2bfloat16_rn, the bits of
// cpu::bf16_bits), written by the same thread right after the fp32 value.
void adamw_step(float* params, std::uint16_t* params_bf16, const float* grads, float* m, float* v,
                std::size_t n, long t, float lr, float beta1, float beta2, float eps,
                float weight_decay);

// Sum of squares of g[0..n) in double, added in an order fixed by n (fixed chunks, a fixed
// reduction tree, no atomics), so repeated runs give the same bits. Waits for the result.
double grad_norm_squared(const float* g, std::size_t n);

// g[i] *= s.
void scale_grads(float* g, std::size_t n, float s);

// Clips the global norm of g[0..n) to max_norm: when the norm exceeds it, every gradient is
// scaled by max_norm / norm. Returns the norm before clipping. Waits for the norm.
float clip_grad_norm(float* g, std::size_t n, float max_norm);

}  // namespace mb::kernels::cuda
