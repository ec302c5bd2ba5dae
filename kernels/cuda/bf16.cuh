// fp32 → bfloat16 conversion on the GPU (and back, from_bf16): the staging step of the bf16 matrix products
// (matmul_forward_bf16 / matmul_backward_bf16 in matmul.cuh), which round their fp32 operands
// into stream-ordered scratch before handing them to cuBLASLt as CUDA_R_16BF matrices.
//
// Every element is converted with __float2bfloat16_rn (round to nearest, ties to even), so
// the bits equal the CPU's cpu::bf16_bits (cpu/bf16.hpp) for every non-NaN input; a NaN gives
// a NaN (the GPU tests check both). Plain C++ (bf16 values as their 16-bit patterns), device
// pointers, default stream, returns before the kernel finishes (see common.cuh).
#pragma once

#include <cstddef>
#include <cstdint>

namespace mb::kernels::cuda {

// Staged bf16 matrices get leading dimensions padded to a multiple of 8 elements (16 bytes):
// every row then starts 16-byte aligned, which cuBLASLt's tensor-core kernels want for bf16
// operands, whatever the caller's K or N.
constexpr std::size_t kBf16LdMultiple = 8;

constexpr std::size_t bf16_ld(std::size_t cols) {
  return (cols + kBf16LdMultiple - 1) / kBf16LdMultiple * kBf16LdMultiple;
}

// src is a dense row-major rows × cols fp32 matrix; dst a row-major rows × ld bf16 matrix:
//   dst[r * ld + c] = bits of __float2bfloat16_rn(src[r * cols + c])   for c < cols,
//   dst[r * ld + c] = 0                                                 for cols <= c < ld.
// ld >= cols (std::invalid_argument otherwise). Nothing happens when rows or ld is 0.
void to_bf16(std::uint16_t* dst, const float* src, std::size_t rows, std::size_t cols,
             std::size_t ld);

// The same layout change for a matrix that is bf16 already (a saved activation or a weight's
// copy whose rows cuBLASLt cannot take as they are): src a dense row-major rows × cols bf16
// matrix, dst rows × ld with the padding zeroed. Bits are copied, not converted.
void pad_bf16(std::uint16_t* dst, const std::uint16_t* src, std::size_t rows, std::size_t cols,
              std::size_t ld);

// The way back: dst[i] = the fp32 value of the bf16 pattern src[i] for i < n (exact), as
// cpu::from_bf16. How a model reads back an activation it saved as bf16 only.
void from_bf16(float* dst, const std::uint16_t* src, std::size_t n);

}  // namespace mb::kernels::cuda
