// Inverted dropout. The mask costs a 64-bit hash per element and is redrawn in the backward
// pass instead of being stored: cheaper than reading a mask back from memory, and it keeps
// forward, backward and the CUDA twin in agreement by construction.
#include "cpu/dropout.hpp"

#include "cpu/parallel.hpp"
#include "cpu/simd.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace mb::kernels::cpu {
namespace {

constexpr std::size_t kChunk = 1 << 14;

void check_p(float p, const char* what) {
  if (!(p >= 0.0f && p < 1.0f))
    throw std::invalid_argument(std::string(what) + ": dropout probability " + std::to_string(p) +
                                " is outside [0, 1)");
}

// The factor (0 or 1/(1-p)) as a product rather than a select keeps the loop branch-free.
MB_CPU_CLONES
void forward_chunk(float* out, const float* inp, std::size_t n, std::uint64_t key,
                   std::uint64_t first, std::uint32_t threshold, float scale) {
  for (std::size_t i = 0; i < n; ++i) {
    const float keep = static_cast<float>(dropout_bits(key, first + i) >= threshold);
    out[i] = inp[i] * (keep * scale);
  }
}

MB_CPU_CLONES
void backward_chunk(float* __restrict dinp, const float* __restrict dout, std::size_t n,
                    std::uint64_t key, std::uint64_t first, std::uint32_t threshold, float scale) {
  for (std::size_t i = 0; i < n; ++i) {
    const float keep = static_cast<float>(dropout_bits(key, first + i) >= threshold);
    dinp[i] = dout[i] * (keep * scale) + 0.0f;  // + 0: a -0 stored as +0, as added to zeros
  }
}

}  // namespace

void dropout_forward(float* out, const float* inp, std::size_t n, float p, std::uint64_t seed,
                     std::uint64_t offset) {
  check_p(p, "dropout_forward");
  if (p == 0.0f) {
    if (out != inp) std::copy(inp, inp + n, out);
    return;
  }
  const std::uint64_t key = dropout_key(seed);
  const std::uint32_t threshold = dropout_threshold(p);
  const float scale = 1.0f / (1.0f - p);
  const auto tasks = static_cast<std::int64_t>((n + kChunk - 1) / kChunk);
  parallel_for(tasks, tasks > 1, [&](std::int64_t t) {
    const std::size_t i0 = static_cast<std::size_t>(t) * kChunk;
    forward_chunk(out + i0, inp + i0, std::min(kChunk, n - i0), key, offset + i0, threshold, scale);
  });
}

void dropout_backward(float* dinp, const float* dout, std::size_t n, float p, std::uint64_t seed,
                      std::uint64_t offset) {
  check_p(p, "dropout_backward");
  const std::uint64_t key = dropout_key(seed);
  const std::uint32_t threshold = dropout_threshold(p);
  const float scale = 1.0f / (1.0f - p);  // exactly 1 for p = 0, and every element is kept
  const auto tasks = static_cast<std::int64_t>((n + kChunk - 1) / kChunk);
  parallel_for(tasks, tasks > 1, [&](std::int64_t t) {
    const std::size_t i0 = static_cast<std::size_t>(t) * kChunk;
    backward_chunk(dinp + i0, dout + i0, std::min(kChunk, n - i0), key, offset + i0, threshold,
                   scale);
  });
}

}  // namespace mb::kernels::cpu
