// Layer normalisation over the last dimension, forward and backward.
#pragma once

namespace mb::kernels::cpu {

// For each of N rows of C values:
//   out = (inp - mean) * rstd * weight + bias,   rstd = 1 / sqrt(var + eps)
// with the biased variance. mean[N] and rstd[N] are saved for the backward pass; either may be
// null when no backward pass follows (generation). out is overwritten.
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int N, int C, float eps = 1e-5f);

// Gradients, accumulated (+=): dinp[N,C], dweight[C], dbias[C]; each may be null to skip it.
// mean and rstd are the ones layernorm_forward saved. The parameter gradients are summed over
// rows in a fixed order, so they do not depend on the number of threads.
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                        const float* inp, const float* weight, const float* mean, const float* rstd,
                        int N, int C);

}  // namespace mb::kernels::cpu
