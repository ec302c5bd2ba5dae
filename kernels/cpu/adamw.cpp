// AdamW and gradient clipping: streaming loops over the flat parameter buffer, split into
// fixed chunks so that the gradient norm is summed in the same order for any thread count.
#include "cpu/adamw.hpp"

#include "cpu/bf16.hpp"
#include "cpu/parallel.hpp"
#include "cpu/simd.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

namespace mb::kernels::cpu {
namespace {

constexpr std::size_t kChunk = 1 << 14;

std::int64_t chunks(std::size_t n) { return static_cast<std::int64_t>((n + kChunk - 1) / kChunk); }

MB_CPU_CLONES
void adamw_chunk(float* __restrict p, const float* __restrict g, float* __restrict m,
                 float* __restrict v, std::size_t n, float lr, float b1, float b2, float eps,
                 float wd, float c1, float c2) {
  for (std::size_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float mi = b1 * m[i] + (1.0f - b1) * gi;
    const float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float mhat = mi / c1, vhat = vi / c2;
    p[i] -= lr * (mhat / (std::sqrt(vhat) + eps) + wd * p[i]);
  }
}

MB_CPU_CLONES
void bf16_copy_chunk(std::uint16_t* __restrict dst, const float* __restrict p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) dst[i] = bf16_bits(p[i]);
}

MB_CPU_CLONES
double squares_chunk(const float* __restrict g, std::size_t n) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (std::size_t i = 0; i < n; ++i) s += static_cast<double>(g[i]) * g[i];
  return s;
}

MB_CPU_CLONES
void scale_chunk(float* __restrict g, std::size_t n, float s) {
  for (std::size_t i = 0; i < n; ++i) g[i] *= s;
}

}  // namespace

void adamw_step(float* params, std::uint16_t* params_bf16, const float* grads, float* m, float* v,
                std::size_t n, long t, float lr, float beta1, float beta2, float eps,
                float weight_decay) {
  if (t < 1) throw std::invalid_argument("adamw_step: the step number t starts at 1");
  const float c1 = adamw_bias_correction(beta1, t), c2 = adamw_bias_correction(beta2, t);
  const std::int64_t tasks = chunks(n);
  parallel_for(tasks, tasks > 1, [&](std::int64_t k) {
    const std::size_t i0 = static_cast<std::size_t>(k) * kChunk;
    adamw_chunk(params + i0, grads + i0, m + i0, v + i0, std::min(kChunk, n - i0), lr, beta1, beta2,
                eps, weight_decay, c1, c2);
    // In the same task, while the chunk is in cache.
    if (params_bf16) bf16_copy_chunk(params_bf16 + i0, params + i0, std::min(kChunk, n - i0));
  });
}

double grad_norm_squared(const float* g, std::size_t n) {
  const std::int64_t tasks = chunks(n);
  std::vector<double> partial(static_cast<std::size_t>(tasks));
  parallel_for(tasks, tasks > 1, [&](std::int64_t k) {
    const std::size_t i0 = static_cast<std::size_t>(k) * kChunk;
    partial[static_cast<std::size_t>(k)] = squares_chunk(g + i0, std::min(kChunk, n - i0));
  });
  double s = 0.0;
  for (double x : partial) s += x;
  return s;
}

void scale_grads(float* g, std::size_t n, float s) {
  const std::int64_t tasks = chunks(n);
  parallel_for(tasks, tasks > 1, [&](std::int64_t k) {
    const std::size_t i0 = static_cast<std::size_t>(k) * kChunk;
    scale_chunk(g + i0, std::min(kChunk, n - i0), s);
  });
}

float clip_grad_norm(float* g, std::size_t n, float max_norm) {
  const double norm = std::sqrt(grad_norm_squared(g, n));
  if (norm > max_norm) scale_grads(g, n, static_cast<float>(max_norm / norm));
  return static_cast<float>(norm);
}

}  // namespace mb::kernels::cpu
