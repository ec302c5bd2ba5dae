// Matrix product of a linear layer on the GPU: the twin of cpu/matmul.hpp (fp32, device
// pointers, default stream; see common.cuh). Plain C++: no CUDA types.
//
// The products run through cuBLASLt (cublasLtMatmul) in plain fp32: CUBLAS_COMPUTE_32F with
// fp32 inputs, outputs and scale, never CUBLAS_COMPUTE_32F_FAST_TF32, so no operand is rounded
// to TF32 and results stay comparable with the CPU twin. Run to run the results are
// bit-identical on one GPU (cuBLAS's reproducibility guarantee for one stream and a fixed
// algorithm; the algorithm is chosen once per shape and pointer alignment and cached).
#pragma once

#include <cstddef>
#include <cstdint>

namespace mb::kernels::cuda {

// The cuBLASLt workspace, allocated once per device on first use: 32 MiB, what NVIDIA
// recommends for Hopper and more than enough for Ampere.
constexpr std::size_t kMatmulWorkspaceBytes = std::size_t{32} << 20;

// out[M,N] = inp[M,K] · weight[N,K]ᵀ + bias[N]. bias may be null (no bias). out is
// overwritten. Throws std::invalid_argument for a negative dimension.
void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int M,
                    int K, int N);

// The twin of cpu/matmul_few_rows.hpp, for a generation step's few rows. cuBLAS already picks
// a kernel of its own for few rows, so this is matmul_forward's GEMM.
void matmul_few_rows_forward(float* out, const float* inp, const float* weight, const float* bias,
                             int M, int K, int N);

// Gradients of matmul_forward, accumulated (+=) into the destinations:
//   dinp[M,K]    += dout[M,N] · weight[N,K]     (or =, with accumulate_dinp false: beta 0,
//                                                 dinp not read)
//   dweight[N,K] += dout[M,N]ᵀ · inp[M,K]
//   dbias[N]     += column sums of dout (deterministic: colsum.cuh, no atomics)
// Any of dinp, dweight, dbias may be null to skip that gradient (inp may then be null when
// dweight is, weight may be null when dinp is).
void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int M, int K, int N, bool accumulate_dinp = true);

// The mixed-precision pair, twins of cpu::matmul_forward_bf16 / cpu::matmul_backward_bf16:
// the semantics above, except that both operands of every product are rounded to bfloat16
// (__float2bfloat16_rn, equal to cpu::round_to_bf16) and multiplied on the tensor cores with
// fp32 accumulation:
//   out[M,N]      = bf16(inp) · bf16(weight)ᵀ + bias        (bias added in fp32)
//   dinp[M,K]    += bf16(dout) · bf16(weight)     (or =, with accumulate_dinp false)
//   dweight[N,K] += bf16(dout)ᵀ · bf16(inp)
//   dbias[N]     += column sums of the fp32 dout (not rounded; as matmul_backward)
// The caller's buffers stay fp32; the rounded copies live in stream-ordered scratch for the
// duration of the call (bf16.cuh). cuBLASLt with A, B CUDA_R_16BF, C, D CUDA_R_32F,
// CUBLAS_COMPUTE_32F: the products of bf16 values are exact, so the results differ from the
// CPU twin's only in the order of the fp32 additions. Deterministic as the fp32 pair (one
// stream, one cached algorithm per shape).
// inp_bf16 and weight_bf16, when not null, are bf16 copies of inp and weight (dense, equal to
// bf16_bits of the fp32 values: a weight's copy as adamw_step writes it, an input a model saved
// in bf16 for the backward pass). cuBLASLt reads a copy in place of a staged operand whenever
// its rows can be handed over as they are (the row length a multiple of 8 and the copy
// 16-byte aligned), which saves one conversion per product; otherwise the copy is padded into
// scratch (pad_bf16). The fp32 operand may be null where its copy is given; the result is the
// same either way.
void matmul_forward_bf16(float* out, const float* inp, const std::uint16_t* inp_bf16,
                         const float* weight, const std::uint16_t* weight_bf16, const float* bias,
                         int M, int K, int N);
void matmul_backward_bf16(float* dinp, float* dweight, float* dbias, const float* dout,
                          const float* inp, const std::uint16_t* inp_bf16, const float* weight,
                          const std::uint16_t* weight_bf16, int M, int K, int N,
                          bool accumulate_dinp = true);

// The twins of cpu::matmul_bias_relu_forward(_bf16): out = max(inp · weightᵀ + bias, 0), the
// bits of matmul_forward(_bf16) without the bias followed by bias_relu_forward. Here it is
// those two, in place (the product, then activation.cuh's kernel over out); cuBLASLt's
// CUBLASLT_EPILOGUE_RELU_BIAS would save the second pass, but adds the bias inside the product
// (not measured, and no GPU here to check its bits against the CPU's).
void matmul_bias_relu_forward(float* out, const float* inp, const float* weight, const float* bias,
                              int M, int K, int N);
void matmul_bias_relu_forward_bf16(float* out, const float* inp, const std::uint16_t* inp_bf16,
                                   const float* weight, const std::uint16_t* weight_bf16,
                                   const float* bias, int M, int K, int N);

// The twins of cpu::matmul_residual_forward(_bf16): out += inp · weightᵀ + bias, the bits of
// matmul_forward(_bf16) into a buffer followed by residual_forward. Here it is those two, the
// product into stream-ordered scratch: cuBLASLt's beta = 1 with the bias epilogue would add
// out before the bias ((p + out) + b, other bits than the CPU's (p + b) + out).
void matmul_residual_forward(float* out, const float* inp, const float* weight, const float* bias,
                             int M, int K, int N);
void matmul_residual_forward_bf16(float* out, const float* inp, const std::uint16_t* inp_bf16,
                                  const float* weight, const std::uint16_t* weight_bf16,
                                  const float* bias, int M, int K, int N);

}  // namespace mb::kernels::cuda
