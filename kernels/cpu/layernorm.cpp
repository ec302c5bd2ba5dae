// Layer normalisation: one row per task, two passes (mean, then variance of the centred
// values) so that rows with a large offset keep their precision in fp32.
#include "cpu/layernorm.hpp"

#include "cpu/colsum.hpp"
#include "cpu/simd.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

namespace mb::kernels::cpu {
namespace {

MB_CPU_CLONES
void forward_row(float* __restrict out, float* __restrict mean_out, float* __restrict rstd_out,
                 const float* __restrict x, const float* __restrict w, const float* __restrict b,
                 int C, float eps) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int i = 0; i < C; ++i) sum += x[i];
  const float m = sum / static_cast<float>(C);
  float sq = 0.0f;
#pragma omp simd reduction(+ : sq)
  for (int i = 0; i < C; ++i) sq += (x[i] - m) * (x[i] - m);
  const float s = 1.0f / std::sqrt(sq / static_cast<float>(C) + eps);
  for (int i = 0; i < C; ++i) out[i] = (x[i] - m) * s * w[i] + b[i];
  if (mean_out) *mean_out = m;
  if (rstd_out) *rstd_out = s;
}

// Backward for rows [r0, r1): dinp rows, and this task's partial dweight/dbias (pw, pb).
MB_CPU_CLONES
void backward_rows(float* __restrict dinp, float* __restrict pw, float* __restrict pb,
                   const float* __restrict dout, const float* __restrict inp,
                   const float* __restrict w, const float* __restrict mean,
                   const float* __restrict rstd, int r0, int r1, int C) {
  for (int r = r0; r < r1; ++r) {
    const std::size_t off = static_cast<std::size_t>(r) * C;
    const float* __restrict x = inp + off;
    const float* __restrict dy = dout + off;
    const float m = mean[r], s = rstd[r];
    // dinp = s * (dnorm - mean(dnorm) - norm * mean(dnorm * norm)), dnorm = dy * w
    float sum_dn = 0.0f, sum_dn_n = 0.0f;
#pragma omp simd reduction(+ : sum_dn, sum_dn_n)
    for (int i = 0; i < C; ++i) {
      const float n = (x[i] - m) * s;
      const float dn = dy[i] * w[i];
      sum_dn += dn;
      sum_dn_n += dn * n;
    }
    if (pw) {
      for (int i = 0; i < C; ++i) pw[i] += (x[i] - m) * s * dy[i];
    }
    if (pb) {
      for (int i = 0; i < C; ++i) pb[i] += dy[i];
    }
    if (dinp) {
      float* __restrict dx = dinp + off;
      const float a = sum_dn / static_cast<float>(C);
      const float c = sum_dn_n / static_cast<float>(C);
      for (int i = 0; i < C; ++i) {
        const float n = (x[i] - m) * s;
        dx[i] += s * (dy[i] * w[i] - a - n * c);
      }
    }
  }
}

void check_sizes(int N, int C) {
  if (N < 0 || C <= 0) throw std::invalid_argument("layernorm: need N >= 0 and C > 0");
}

}  // namespace

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int N, int C, float eps) {
  check_sizes(N, C);
#pragma omp parallel for schedule(static) if (static_cast <std::int64_t>(N) * C > 16384)
  for (int r = 0; r < N; ++r) {
    const std::size_t off = static_cast<std::size_t>(r) * C;
    forward_row(out + off, mean ? mean + r : nullptr, rstd ? rstd + r : nullptr, inp + off, weight,
                bias, C, eps);
  }
}

void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                        const float* inp, const float* weight, const float* mean, const float* rstd,
                        int N, int C) {
  check_sizes(N, C);
  if (N == 0) return;
  const detail::RowTasks split = detail::row_tasks(N);
  const int tasks = split.count;
  // Partials: per task, C values for dweight then C for dbias.
  const std::size_t stride = 2 * static_cast<std::size_t>(C);
  const bool params = dweight || dbias;
  std::vector<float> partial(params ? tasks * stride : 0, 0.0f);
  float* const part = partial.data();
  const bool big = static_cast<std::int64_t>(N) * C > 16384;
#pragma omp parallel for schedule(static) if (big)
  for (int t = 0; t < tasks; ++t) {
    float* pw = dweight ? part + t * stride : nullptr;
    float* pb = dbias ? part + t * stride + C : nullptr;
    backward_rows(dinp, pw, pb, dout, inp, weight, mean, rstd, split.begin(t), split.end(t, N), C);
  }
  if (dweight) detail::add_partials(dweight, part, tasks, stride, C, big);
  if (dbias) detail::add_partials(dbias, part + C, tasks, stride, C, big);
}

}  // namespace mb::kernels::cpu
