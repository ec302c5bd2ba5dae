// Matrix product of a linear layer, forward and backward (oneDNN).
//
// Layout follows llm.c and PyTorch's nn.Linear: the weight is stored [N, K] (one row per
// output feature), so out = inp · weightᵀ. All matrices are dense row-major fp32.
#pragma once

namespace mb::kernels::cpu {

// out[M,N] = inp[M,K] · weight[N,K]ᵀ + bias[N]. bias may be null (no bias).
// out is overwritten.
void matmul_forward(float* out, const float* inp, const float* weight, const float* bias,
                    int M, int K, int N);

// Gradients of matmul_forward, accumulated (+=) into the destinations:
//   dinp[M,K]    += dout[M,N] · weight[N,K]
//   dweight[N,K] += dout[M,N]ᵀ · inp[M,K]
//   dbias[N]     += column sums of dout
// Any of dinp, dweight, dbias may be null to skip that gradient (inp may then be null when
// dweight is, weight may be null when dinp is).
void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                     const float* inp, const float* weight, int M, int K, int N);

}  // namespace mb::kernels::cpu
