// Plain loops: one query row per head costs n·d multiply-adds twice, far less than the
// projections around it, so there is nothing to tile. Heads run in parallel only when a step is
// big enough to pay for waking the threads.
#include "cpu/attention_step.hpp"

#include "cpu/simd.hpp"

#include <cmath>
#include <cstdint>
#include <stdexcept>

namespace mb::kernels::cpu {
namespace {

MB_CPU_CLONES
void step_head(float* __restrict out, float* __restrict s, const float* __restrict q,
               const float* __restrict k, const float* __restrict v, int n, int d,
               std::size_t stride, float scale) {
    float mx = -INFINITY;
    for (int j = 0; j < n; ++j) {
        const float* __restrict kj = k + j * stride;
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
        const float* __restrict vj = v + j * stride;
        const float w = s[j] * inv;
#pragma omp simd
        for (int e = 0; e < d; ++e) out[e] += w * vj[e];
    }
}

}  // namespace

void attention_step(float* out, float* scores, const float* q, const float* k, const float* v,
                    int B, int n, int H, int d, std::size_t q_stride, std::size_t stride,
                    std::size_t batch_stride) {
    if (B < 1 || n < 1 || H < 1 || d < 1)
        throw std::invalid_argument(
            "attention_step: need B, n, H, d >= 1 (a position sees itself)");
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    const std::int64_t tasks = static_cast<std::int64_t>(B) * H;
    const std::int64_t work = tasks * n * d;
#pragma omp parallel for schedule(static) if (tasks > 1 && work > 65536)
    for (std::int64_t task = 0; task < tasks; ++task) {
        const std::size_t b = static_cast<std::size_t>(task / H), h = static_cast<std::size_t>(task % H);
        const std::size_t row = static_cast<std::size_t>(task);   // b · H + h
        step_head(out + row * d, scores + row * n, q + b * q_stride + h * d,
                  k + b * batch_stride + h * d, v + b * batch_stride + h * d, n, d, stride, scale);
    }
}

}  // namespace mb::kernels::cpu
