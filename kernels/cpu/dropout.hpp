// Inverted dropout with a counter-based random mask, forward and backward.
//
// The mask is a pure function of (seed, index): element i of a call with `offset` is kept iff
// dropout_bits(dropout_key(seed), offset + i) >= dropout_threshold(p). Nothing is stored
// between forward and backward (the backward redraws the mask), the result does not depend on
// how the work is split between threads, and the CUDA twin includes this header to draw the
// identical mask on the device. Callers give every dropout site of a step its own range of
// indices (offset) or its own seed.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__CUDACC__)
#define MB_HOST_DEVICE __host__ __device__
#else
#define MB_HOST_DEVICE
#endif

namespace mb::kernels::cpu {

// splitmix64's output function (Steele, Lea, Flood 2014): a bijective 64-bit mixer whose
// outputs for consecutive inputs pass BigCrush. The masks' own copy, for host and device:
// lib/core/rng.hpp has the library's, which the kernels, depending on nothing of lib/, cannot
// include.
MB_HOST_DEVICE inline std::uint64_t splitmix64_mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The per-call key: the seed is mixed first so that nearby seeds give unrelated streams.
MB_HOST_DEVICE inline std::uint64_t dropout_key(std::uint64_t seed) {
  return splitmix64_mix(seed ^ 0x6A09E667F3BCC909ull);
}

// 32 uniform random bits for one element: splitmix64's state after `index + 1` steps from
// `key`, mixed.
MB_HOST_DEVICE inline std::uint32_t dropout_bits(std::uint64_t key, std::uint64_t index) {
  return static_cast<std::uint32_t>(splitmix64_mix(key + (index + 1) * 0x9E3779B97F4A7C15ull) >>
                                    32);
}

// An element is dropped iff its bits fall below this: p · 2^32, rounded down.
MB_HOST_DEVICE inline std::uint32_t dropout_threshold(float p) {
  const double t = static_cast<double>(p) * 4294967296.0;
  return t >= 4294967295.0 ? 0xFFFFFFFFu : static_cast<std::uint32_t>(t);
}

// out[i] = inp[i] · keep(offset + i) / (1 - p) for i < n, where the factor is computed in fp32
// as 1.0f / (1.0f - p). p must lie in [0, 1) (std::invalid_argument otherwise); p = 0 copies.
// out is overwritten and may equal inp (in place).
void dropout_forward(float* out, const float* inp, std::size_t n, float p, std::uint64_t seed,
                     std::uint64_t offset);

// dinp[i] = dout[i] · keep(offset + i) / (1 - p), with the same mask as the forward call with
// the same (p, seed, offset). dinp is written, not read (an input's gradient, as the products'
// backward writes theirs: backend.hpp), with the bits of adding the product to zeros: a dropped
// element is +0 whatever dout's sign.
void dropout_backward(float* dinp, const float* dout, std::size_t n, float p, std::uint64_t seed,
                      std::uint64_t offset);

}  // namespace mb::kernels::cpu
