// bfloat16 rounding of fp32 values, for the mixed-precision matrix products
// (matmul_forward_bf16 / matmul_backward_bf16): their operands are rounded to bf16, products
// and sums stay in fp32.
//
// bf16 is the upper half of an fp32 bit pattern (sign, 8 exponent bits, 7 mantissa bits), so
// rounding works on the bits alone: add half an ulp of bf16 (0x7FFF, plus 1 when the kept
// part is odd, which makes ties go to even) and clear the lower 16 bits. The same arithmetic
// covers every case: a carry out of the mantissa bumps the exponent (so values past the
// largest bf16, 0x7F7F = 3.3895e38, less half an ulp, become ±inf, and ±inf stays ±inf),
// denormals round like any other value (their exponent field is 0 and a carry makes them the
// smallest normal), and ±0 stays ±0. NaN is the one exception, handled apart: every NaN
// becomes the canonical quiet NaN 0x7FFF (positive, all mantissa bits set), as CUDA does.
//
// The result is bit for bit CUDA's __float2bfloat16_rn (cuda_bf16.hpp: round to nearest,
// ties to even; its software path, used on the host, maps every NaN to 0x7FFF; on sm_80 and
// newer it is the cvt.rn.bf16.f32 instruction). Header-only and __host__ __device__ under
// nvcc (MB_HOST_DEVICE, as cpu/dropout.hpp), so device code may use it as well.
#pragma once

#include <cstddef>
#include <cstdint>

#if !defined(__CUDA_ARCH__)
#include <bit>
#endif

#if !defined(MB_HOST_DEVICE)
#if defined(__CUDACC__)
#define MB_HOST_DEVICE __host__ __device__
#else
#define MB_HOST_DEVICE
#endif
#endif

namespace mb::kernels::cpu {

namespace bf16_detail {

MB_HOST_DEVICE inline std::uint32_t float_bits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  return std::bit_cast<std::uint32_t>(x);
#endif
}

MB_HOST_DEVICE inline float bits_float(std::uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  return std::bit_cast<float>(u);
#endif
}

// The fp32 bit pattern of x rounded to bf16 (lower 16 bits zero). Branch-free (the NaN case
// is a select), so loops over arrays vectorise.
MB_HOST_DEVICE inline std::uint32_t rounded_bits(std::uint32_t u) {
  const std::uint32_t r = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
  return (u & 0x7FFFFFFFu) > 0x7F800000u ? 0x7FFF0000u : r;
}

}  // namespace bf16_detail

// x rounded to the nearest bfloat16 (ties to even), returned as the fp32 value it equals.
// NaN gives the canonical quiet NaN (bits 0x7FFF0000); ±inf stay; finite values at or past
// 0x7F7F8000 in magnitude (half an ulp above the largest bf16) become ±inf.
MB_HOST_DEVICE inline float round_to_bf16(float x) {
  return bf16_detail::bits_float(bf16_detail::rounded_bits(bf16_detail::float_bits(x)));
}

// The 16-bit pattern of x rounded to bf16: __bfloat16_as_ushort(__float2bfloat16_rn(x)).
MB_HOST_DEVICE inline std::uint16_t bf16_bits(float x) {
  return static_cast<std::uint16_t>(bf16_detail::rounded_bits(bf16_detail::float_bits(x)) >> 16);
}

// The fp32 value of a bf16 bit pattern (exact: bf16 is the upper half of an fp32).
MB_HOST_DEVICE inline float bf16_value(std::uint16_t bits) {
  return bf16_detail::bits_float(static_cast<std::uint32_t>(bits) << 16);
}

// The twin of cuda::to_bf16 (cuda/bf16.cuh): src is a dense row-major rows × cols fp32 matrix,
// dst a row-major rows × ld matrix of bf16 patterns:
//   dst[r * ld + c] = bf16_bits(src[r * cols + c])   for c < cols,
//   dst[r * ld + c] = 0                               for cols <= c < ld.
// ld >= cols (std::invalid_argument otherwise). With rows = 1 and ld = cols it converts a flat
// buffer: how a model refreshes the bf16 copy of its weights (Model::upload_parameters()).
void to_bf16(std::uint16_t* dst, const float* src, std::size_t rows, std::size_t cols,
             std::size_t ld);

// The twin of cuda::from_bf16: dst[i] = bf16_value(src[i]) for i < n, the fp32 values of n
// bf16 patterns (exact). How a model reads back, in fp32, an activation it saved as bf16 only
// (TransformerStack: the attention's inputs and output).
void from_bf16(float* dst, const std::uint16_t* src, std::size_t n);

}  // namespace mb::kernels::cpu
