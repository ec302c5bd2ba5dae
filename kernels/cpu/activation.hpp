// Bias + activation (GELU with the tanh approximation, ReLU), forward and backward.
//
// The input is the pre-activation without its bias (the output of a bias-free matmul), so the
// bias add is fused into the activation: out = act(inp + bias). bias may be null (no bias).
// The backward pass recomputes inp + bias, so the forward keeps no extra buffer.
//
// The backward passes read the pre-activation either as fp32 (inp) or as its bf16 copy
// (inp_bf16: in bf16 precision the model saves only that, TransformerStack): when the copy is
// given it is read instead of inp, which may then be null, and the gradient is the one at the
// rounded value, as under PyTorch's autocast, whose pre-activation is a bf16 tensor.
#pragma once

#include <cstdint>

namespace mb::kernels::cpu {

// out[N,C] = gelu(inp + bias), gelu(x) = x/2 · (1 + tanh(sqrt(2/pi) · (x + 0.044715 x³))).
// out is overwritten and may equal inp (in place).
void bias_gelu_forward(float* out, const float* inp, const float* bias, int N, int C);

// dinp[N,C] += dout · gelu'(inp + bias); dbias[C] += its column sums (in a fixed order, so
// independent of the thread count). dinp or dbias may be null to skip it. inp_bf16: see above.
// With accumulate_dinp false, dinp = instead (not read: any old contents, NaN included): the
// bits of adding to zeros, a -0 stored as +0.
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

}  // namespace mb::kernels::cpu
