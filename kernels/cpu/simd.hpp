// Vectorisation helpers shared by the CPU kernels: per-ISA function clones and an exp that
// GCC can vectorise.
#pragma once

#include <bit>
#include <cstdint>

// The project is built for generic x86-64 (SSE2) so that one binary runs everywhere, yet the
// machines we train on have AVX2 or AVX-512. GCC's target_clones compiles a function once per
// listed ISA and picks the best at load time (an ifunc), so the hot per-row / per-head worker
// functions get 256- or 512-bit vectors (and FMA) without -march flags. Only the workers are
// cloned: each call does enough work (a whole row, a whole attention head) that the indirect
// call costs nothing measurable.
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) && !defined(__CUDACC__)
#define MB_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
// A kernel whose register blocking differs by ISA (AVX-512 has 32 registers of 16 floats, AVX2
// 16 of 8) has an AVX-512 variant of its own, compiled with this and called where
// cpu_has_avx512() says so. Its loops that GCC vectorises by itself take whole 512-bit
// registers too (GCC's default for x86-64-v4 is 256-bit vectors, the target_clones' choice).
#define MB_CPU_HAS_AVX512_VARIANT 1
#define MB_CPU_AVX512 __attribute__((target("arch=x86-64-v4,prefer-vector-width=512")))
#else
#define MB_CPU_CLONES
#define MB_CPU_HAS_AVX512_VARIANT 0
#define MB_CPU_AVX512
#endif

namespace mb::kernels::cpu {

// Whether this machine runs the AVX-512 variants (x86-64-v4: AVX-512 F, BW, CD, DQ, VL), the
// level target_clones picks its "arch=x86-64-v4" clones by.
inline bool cpu_has_avx512() {
#if MB_CPU_HAS_AVX512_VARIANT
  static const bool has = __builtin_cpu_supports("x86-64-v4");
  return has;
#else
  return false;
#endif
}

// Which variant a kernel with ISA variants runs: the best this machine has, or the AVX2 one
// everywhere (the tests check that the two give the same bits).
enum class IsaVariant { best, avx2 };
inline bool runs_avx512(IsaVariant variant) {
  return variant == IsaVariant::best && cpu_has_avx512();
}

// e^x for fp32, within 1 ulp of std::exp for x in [-87.3, 88.3]; +0 below (where std::exp
// gives denormals, and for -inf); e^88.3 above (callers pass x <= 0 after subtracting a row
// maximum, so the saturation never shows); NaN stays NaN.
//
// libm's expf is a call that GCC does not vectorise without -ffast-math; this is arithmetic
// only (Cephes' range reduction and polynomial). The clamping is done on the bit patterns with
// integer masks: GCC will not if-convert a select between floating-point values that feed
// further arithmetic under the default -ftrapping-math, and a loop with control flow left in it
// does not vectorise. Written this way, softmax loops vectorise in any translation unit.
inline float exp_approx(float x) {
  const std::int32_t below = -static_cast<std::int32_t>(x < -87.3f);  // all ones or zero
  const std::int32_t above = -static_cast<std::int32_t>(x > 88.3f);
  const float xc = std::bit_cast<float>((std::bit_cast<std::int32_t>(x) & ~(below | above)) |
                                        (std::bit_cast<std::int32_t>(-87.3f) & below) |
                                        (std::bit_cast<std::int32_t>(88.3f) & above));
  // n = round(x / ln 2) by the 1.5·2^23 trick (exact round-to-nearest for |x/ln2| < 2^22).
  constexpr float kRound = 12582912.0f;
  const float n = (xc * 1.44269504088896341f + kRound) - kRound;
  // r = x - n ln 2, with ln 2 split in two so that n·ln2_hi is exact.
  const float r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // 2^n from n's bits as the trick left them (converting n would be undefined for a NaN x).
  const std::uint32_t ni =
      std::bit_cast<std::uint32_t>(n + kRound) - std::bit_cast<std::uint32_t>(kRound);
  const float y = p * std::bit_cast<float>((ni + 127u) << 23);
  return std::bit_cast<float>(std::bit_cast<std::int32_t>(y) & ~below);
}

// tanh through exp_approx: 1 - 2 / (e^{2u} + 1). Absolute error below 2e-7 (relative error
// grows for |u| < 1e-3, where tanh is tiny; callers use it inside 1 + tanh, where that is
// harmless).
inline float tanh_approx(float u) { return 1.0f - 2.0f / (exp_approx(2.0f * u) + 1.0f); }

}  // namespace mb::kernels::cpu
