// Plain loops: one query row per head costs n·d multiply-adds twice, far less than the
// projections around it, so there is nothing to tile. Heads run in parallel only when a step is
// big enough to pay for waking the threads.
#include "cpu/attention_step.hpp"

#include "cpu/bf16.hpp"
#include "cpu/parallel.hpp"
#include "cpu/simd.hpp"

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

namespace mb::kernels::cpu {
namespace {

// The rows of one head's cache as fp32: in place, or (bf16 patterns) widened into a buffer
// of d floats, one row at a time. Either way the loops below see fp32 rows, so both caches run
// the very same arithmetic in the same order.
struct Fp32Rows {
  const float* base;
  std::size_t stride;
  const float* row(int j) const { return base + static_cast<std::size_t>(j) * stride; }
};
struct Bf16Rows {
  const std::uint16_t* base;
  std::size_t stride;
  int d;
  float* buffer;
  const float* row(int j) const {
    const std::uint16_t* r = base + static_cast<std::size_t>(j) * stride;
    for (int e = 0; e < d; ++e) buffer[e] = bf16_value(r[e]);
    return buffer;
  }
};

// One (sequence, head), inlined into each clone below.
template <class Rows>
inline __attribute__((always_inline)) void step_head_body(float* __restrict out,
                                                          float* __restrict s,
                                                          const float* __restrict q, const Rows& k,
                                                          const Rows& v, int n, int d,
                                                          float scale) {
  float mx = -INFINITY;
  for (int j = 0; j < n; ++j) {
    const float* __restrict kj = k.row(j);
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int e = 0; e < d; ++e) dot += q[e] * kj[e];
    s[j] = dot * scale;
    mx = s[j] > mx ? s[j] : mx;
  }
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int j = 0; j < n; ++j) {
    s[j] = exp_approx(s[j] - mx);
    sum += s[j];
  }
  const float inv = 1.0f / sum;
  for (int e = 0; e < d; ++e) out[e] = 0.0f;
  for (int j = 0; j < n; ++j) {
    const float* __restrict vj = v.row(j);
    const float w = s[j] * inv;
#pragma omp simd
    for (int e = 0; e < d; ++e) out[e] += w * vj[e];
  }
}

MB_CPU_CLONES
void step_head(float* out, float* s, const float* q, const float* k, const float* v, int n, int d,
               std::size_t stride, float scale) {
  step_head_body(out, s, q, Fp32Rows{k, stride}, Fp32Rows{v, stride}, n, d, scale);
}

MB_CPU_CLONES
void step_head(float* out, float* s, const float* q, const std::uint16_t* k, const std::uint16_t* v,
               int n, int d, std::size_t stride, float scale) {
  std::vector<float> buffer(static_cast<std::size_t>(d));
  step_head_body(out, s, q, Bf16Rows{k, stride, d, buffer.data()},
                 Bf16Rows{v, stride, d, buffer.data()}, n, d, scale);
}

// Every (sequence, head) of the batch, as one task each.
template <class Cache>
void step_all(float* out, float* scores, const float* q, const Cache* k, const Cache* v, int B,
              int n, int H, int d, std::size_t q_stride, std::size_t stride,
              std::size_t batch_stride) {
  if (B < 1 || n < 1 || H < 1 || d < 1)
    throw std::invalid_argument("attention_step: need B, n, H, d >= 1 (a position sees itself)");
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const std::int64_t tasks = static_cast<std::int64_t>(B) * H;
  const std::int64_t work = tasks * n * d;
  parallel_for(tasks, work > 65536, [&](std::int64_t task) {
    const std::size_t b = static_cast<std::size_t>(task / H),
                      h = static_cast<std::size_t>(task % H);
    const std::size_t row = static_cast<std::size_t>(task);  // b · H + h
    step_head(out + row * d, scores + row * n, q + b * q_stride + h * d,
              k + b * batch_stride + h * d, v + b * batch_stride + h * d, n, d, stride, scale);
  });
}

}  // namespace

void attention_step(float* out, float* scores, const float* q, const float* k, const float* v,
                    int B, int n, int H, int d, std::size_t q_stride, std::size_t stride,
                    std::size_t batch_stride) {
  step_all(out, scores, q, k, v, B, n, H, d, q_stride, stride, batch_stride);
}

void attention_step_bf16(float* out, float* scores, const float* q, const std::uint16_t* k,
                         const std::uint16_t* v, int B, int n, int H, int d, std::size_t q_stride,
                         std::size_t stride, std::size_t batch_stride) {
  step_all(out, scores, q, k, v, B, n, H, d, q_stride, stride, batch_stride);
}

}  // namespace mb::kernels::cpu
