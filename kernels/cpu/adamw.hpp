// AdamW optimiser step and global gradient-norm clipping, on flat fp32 buffers.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace mb::kernels::cpu {

// The bias correction 1 - beta^t of AdamW's step t, formed in double (for beta2 = 0.999 and
// small t, 1 - beta^t is small and would lose digits in float) and rounded once to float.
// Both twins (this one and cuda/adamw.cu) use it, so they divide by the same value.
inline float adamw_bias_correction(float beta, long t) {
  return static_cast<float>(1.0 - std::pow(static_cast<double>(beta), static_cast<double>(t)));
}

// One AdamW step (Loshchilov & Hutter) over n parameters, as PyTorch's torch.optim.AdamW:
//   m = b1 m + (1 - b1) g,   v = b2 v + (1 - b2) g²
//   p -= lr · ( m / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps)  +  weight_decay · p )
// t is the 1-based step number. Decay is decoupled from the gradient; pass weight_decay = 0
// for tensors that should not decay (biases, norms). m and v start at zero.
// params_bf16, when not null, receives the bf16 copy of the updated parameters
// (params_bf16[i] = bf16_bits(params[i]), cpu/bf16.hpp): the copy the bf16 matrix products
// read instead of rounding the fp32 master weights again at every call.
void adamw_step(float* params, std::uint16_t* params_bf16, const float* grads, float* m, float* v,
                std::size_t n, long t, float lr, float beta1, float beta2, float eps,
                float weight_decay);

// Sum of squares of g[0..n) in double, added in a fixed order (independent of the thread
// count). Sums from several buffers or processes add up to the squared global norm.
double grad_norm_squared(const float* g, std::size_t n);

// g[i] *= s.
void scale_grads(float* g, std::size_t n, float s);

// Clips the global norm of g[0..n) to max_norm: when the norm exceeds it, every gradient is
// scaled by max_norm / norm. Returns the norm before clipping (for the training log).
float clip_grad_norm(float* g, std::size_t n, float max_norm);

}  // namespace mb::kernels::cpu
