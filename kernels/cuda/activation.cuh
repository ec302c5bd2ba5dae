// Bias + activation (GELU, tanh approximation; ReLU) on the GPU: the twin of
// cpu/activation.hpp (fp32, device pointers, default stream; see common.cuh). Plain C++.
//
// The backward passes read the pre-activation as fp32 (inp) or as its bf16 copy (inp_bf16),
// as the CPU twin: when the copy is given it is read instead of inp, which may then be null.
#pragma once

#include <cstdint>

namespace mb::kernels::cuda {

// out[N,C] = gelu(inp + bias), gelu(x) = x/2 · (1 + tanh(sqrt(2/pi) · (x + 0.044715 x³))).
// bias may be null. out is overwritten and may equal inp (in place).
void bias_gelu_forward(float* out, const float* inp, const float* bias, int N, int C);

// dinp[N,C] += dout · gelu'(inp + bias); dbias[C] += its column sums, added in an order fixed
// by N alone (no atomics), so repeated runs are bit-identical. dinp or dbias may be null.
// With accumulate_dinp false, dinp = instead (not read), as the CPU twin.
void bias_gelu_backward(float* dinp, float* dbias, const float* dout, const float* inp,
                        const std::uint16_t* inp_bf16, const float* bias, int N, int C,
                        bool accumulate_dinp = true);

// out[N,C] = max(inp + bias, 0). out is overwritten and may equal inp (in place).
void bias_relu_forward(float* out, const float* inp, const float* bias, int N, int C);

// dinp[N,C] += dout where inp + bias > 0; dbias[C] += its column sums. Either may be null.
// accumulate_dinp: as bias_gelu_backward.
void bias_relu_backward(float* dinp, float* dbias, const float* dout, const float* inp,
                        const std::uint16_t* inp_bf16, const float* bias, int N, int C,
                        bool accumulate_dinp = true);

}  // namespace mb::kernels::cuda
