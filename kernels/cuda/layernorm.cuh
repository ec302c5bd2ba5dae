// Layer normalisation over the last dimension on the GPU: the twin of cpu/layernorm.hpp (fp32,
// device pointers, default stream; see common.cuh). Plain C++: no CUDA types.
#pragma once

namespace mb::kernels::cuda {

// For each of N rows of C values:
//   out = (inp - mean) * rstd * weight + bias,   rstd = 1 / sqrt(var + eps)
// with the biased variance, computed in two passes (mean, then the centred squares). mean[N]
// and rstd[N] are saved for the backward pass; either may be null. out is overwritten.
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int N, int C, float eps = 1e-5f);

// Gradients, accumulated (+=): dinp[N,C], dweight[C], dbias[C]; each may be null to skip it.
// mean and rstd are the ones layernorm_forward saved. dweight and dbias are summed over rows
// in an order fixed by (N, C), without atomics, so repeated runs are bit-identical.
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                        const float* inp, const float* weight, const float* mean, const float* rstd,
                        int N, int C);

}  // namespace mb::kernels::cuda
