// Matrix product of a linear layer, forward and backward (oneDNN, and the weight gradient in
// row order).
//
// Layout follows llm.c and PyTorch's nn.Linear: the weight is stored [N, K] (one row per
// output feature), so out = inp · weightᵀ. All matrices are dense row-major fp32.
#pragma once

#include <cstdint>

namespace mb::kernels::cpu {

// out[M,N] = inp[M,K] · weight[N,K]ᵀ + bias[N]. bias may be null (no bias).
// out is overwritten.
void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int M,
                    int K, int N);

// out[M,N] = max(inp[M,K] · weight[N,K]ᵀ + bias[N], 0): matmul_forward without its bias, then
// bias_relu_forward (cpu/activation.hpp), in one pass: oneDNN's ReLU post-op is applied to each
// block of the product while it is still in cache, instead of writing the pre-activation out
// and reading it back. The same bits as the two ops (the product's sum, then + bias, then the
// max; a kernel test holds it to that). Only for what keeps no pre-activation for a backward
// pass (inference). bias may be null (no bias).
void matmul_bias_relu_forward(float* out, const float* inp, const float* weight, const float* bias,
                              int M, int K, int N);

// out[M,N] += inp[M,K] · weight[N,K]ᵀ + bias[N]: matmul_forward into a buffer, then
// residual_forward(out, out, buffer) (cpu/residual.hpp), in one pass: oneDNN's sum post-op
// adds the finished block (product + bias) to out while it is in cache, with no buffer written
// and read back. The same bits as the two ops (x + (p + b) = (p + b) + x; a kernel test holds
// it to that). For a residual branch added in place (inference). bias may be null.
void matmul_residual_forward(float* out, const float* inp, const float* weight, const float* bias,
                             int M, int K, int N);

// Gradients of matmul_forward, accumulated (+=) into the destinations:
//   dinp[M,K]    += dout[M,N] · weight[N,K]     (or =, with accumulate_dinp false)
//   dweight[N,K] += dout[M,N]ᵀ · inp[M,K]
//   dbias[N]     += column sums of dout
// dweight and dbias add the rows in order to the destination itself
// (weight_gradient_in_row_order, cpu/weight_gradient.hpp): calls on consecutive row ranges
// give the bits of one call over all of them. With accumulate_dinp false, dinp is written
// without being read (its old contents may be anything, NaN included): the bits of adding to
// zeros (but for the sign of an exact zero: a sum of -0 terms stays -0), without the pass that
// zeroes it and the product's reading it back.
// Any of dinp, dweight, dbias may be null to skip that gradient (inp may then be null when
// dweight is, weight may be null when dinp is).
void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int M, int K, int N, bool accumulate_dinp = true);

// The mixed-precision pair (bf16 operands, fp32 accumulation): the same shapes, semantics and
// null-pointer rules as matmul_forward / matmul_backward, except that both operands of every
// product are first rounded to bfloat16 (round_to_bf16, cpu/bf16.hpp). Weights, activations
// and gradients stay fp32 in memory; only the values entering a product are rounded:
//   out[M,N]      = bf16(inp) · bf16(weight)ᵀ + bias        (bias added in fp32)
//   dinp[M,K]    += bf16(dout) · bf16(weight)     (or =, with accumulate_dinp false)
//   dweight[N,K] += bf16(dout)ᵀ · bf16(inp)
//   dbias[N]     += column sums of dout (fp32, not rounded)
// The rounded operands are staged in per-thread buffers (reused between calls) and multiplied
// by the fp32 sgemm: the product of two bf16 values is exact in fp32, so this is the math of a
// bf16 GEMM with fp32 accumulation (tensor cores, the CUDA twin), up to summation order.
// inp_bf16 and weight_bf16, when not null, are bf16 copies of inp and weight (dense bf16
// patterns of the same shapes, equal to bf16_bits of the fp32 values): the products read them
// instead of rounding the fp32 operand, with the same result, and that fp32 operand may then
// be null. A weight's copy is the one adamw_step keeps; an input's copy is an activation a
// model saved for the backward pass in bf16 only (half the memory of the fp32 values).
void matmul_forward_bf16(float* out, const float* inp, const std::uint16_t* inp_bf16,
                         const float* weight, const std::uint16_t* weight_bf16, const float* bias,
                         int M, int K, int N);
void matmul_backward_bf16(float* dinp, float* dweight, float* dbias, const float* dout,
                          const float* inp, const std::uint16_t* inp_bf16, const float* weight,
                          const std::uint16_t* weight_bf16, int M, int K, int N,
                          bool accumulate_dinp = true);
// matmul_bias_relu_forward with the operands rounded to bf16 as in matmul_forward_bf16: the bits
// of matmul_forward_bf16 (no bias) followed by bias_relu_forward.
void matmul_bias_relu_forward_bf16(float* out, const float* inp, const std::uint16_t* inp_bf16,
                                   const float* weight, const std::uint16_t* weight_bf16,
                                   const float* bias, int M, int K, int N);
// matmul_residual_forward with the operands rounded as in matmul_forward_bf16: the bits of
// matmul_forward_bf16 into a buffer, then residual_forward.
void matmul_residual_forward_bf16(float* out, const float* inp, const std::uint16_t* inp_bf16,
                                  const float* weight, const std::uint16_t* weight_bf16,
                                  const float* bias, int M, int K, int N);

}  // namespace mb::kernels::cpu
