// The forward product of a linear layer for the few rows of a generation step (one per
// sequence), which is bound by reading the weights once: the backend's matmul_step_forward.
#pragma once

namespace mb::kernels::cpu {

// out[M,N] = inp[M,K] · weight[N,K]ᵀ + bias[N] (bias may be null), as matmul_forward. Meant for
// a few rows; any M works. Each row's result is the same whatever M and the number of threads
// (oneDNN's matmul_forward gives a row other bits, so a model calls one or the other for the
// same rows, never both: backend.hpp).
void matmul_few_rows_forward(float* out, const float* inp, const float* weight, const float* bias,
                             int M, int K, int N);

}  // namespace mb::kernels::cpu
