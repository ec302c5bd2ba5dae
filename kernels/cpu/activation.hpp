// Bias + activation (GELU with the tanh approximation, ReLU), forward and backward.
//
// The input is the pre-activation without its bias (the output of a bias-free matmul), so the
// bias add is fused into the activation: out = act(inp + bias). bias may be null (no bias).
// The backward pass recomputes inp + bias, so the forward keeps no extra buffer.
#pragma once

namespace mb::kernels::cpu {

// out[N,C] = gelu(inp + bias), gelu(x) = x/2 · (1 + tanh(sqrt(2/pi) · (x + 0.044715 x³))).
// out is overwritten and may equal inp (in place).
void bias_gelu_forward(float* out, const float* inp, const float* bias, int N, int C);

// dinp[N,C] += dout · gelu'(inp + bias); dbias[C] += its column sums (in a fixed order, so
// independent of the thread count). dinp or dbias may be null to skip it.
void bias_gelu_backward(float* dinp, float* dbias, const float* dout, const float* inp,
                        const float* bias, int N, int C);

// out[N,C] = max(inp + bias, 0). out is overwritten and may equal inp (in place).
void bias_relu_forward(float* out, const float* inp, const float* bias, int N, int C);

// dinp[N,C] += dout where inp + bias > 0; dbias[C] += its column sums. Either may be null.
void bias_relu_backward(float* dinp, float* dbias, const float* dout, const float* inp,
                        const float* bias, int N, int C);

}  // namespace mb::kernels::cpu
