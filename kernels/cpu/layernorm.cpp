// Layer normalisation: one row per task, two passes (mean, then variance of the centred
// values) so that rows with a large offset keep their precision in fp32. The backward pass
// computes dinp row by row, then the parameter gradients by column blocks, each going down the
// rows in order into dweight and dbias themselves: calls on consecutive row ranges give the
// bits of one call (as the weight gradients do: cpu/weight_gradient.hpp), whatever the number
// of threads.
#include "cpu/layernorm.hpp"

#include "cpu/parallel.hpp"
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

// dinp for rows [r0, r1).
MB_CPU_CLONES
void backward_rows(float* __restrict dinp, const float* __restrict dout,
                   const float* __restrict inp, const float* __restrict w,
                   const float* __restrict mean, const float* __restrict rstd, int r0, int r1,
                   int C) {
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
    float* __restrict dx = dinp + off;
    const float a = sum_dn / static_cast<float>(C);
    const float c = sum_dn_n / static_cast<float>(C);
    for (int i = 0; i < C; ++i) {
      const float n = (x[i] - m) * s;
      dx[i] += s * (dy[i] * w[i] - a - n * c);
    }
  }
}

// Columns per block of the parameter gradients: 256-byte row segments. A width of 64 or less
// (million-cpu's local model: 32) is one block, so that pass runs on one thread there.
constexpr int kColumnBlock = 64;

// dweight[c0 .. c0+w) += Σ_r norm · dy and dbias[c0 .. c0+w) += Σ_r dy, rows in order, either
// destination may be null.
MB_CPU_CLONES
void parameter_columns(float* __restrict dweight, float* __restrict dbias,
                       const float* __restrict dout, const float* __restrict inp,
                       const float* __restrict mean, const float* __restrict rstd, int N, int C,
                       int c0, int w) {
  float aw[kColumnBlock], ab[kColumnBlock];
  for (int i = 0; i < w; ++i) {
    aw[i] = dweight ? dweight[c0 + i] : 0.0f;
    ab[i] = dbias ? dbias[c0 + i] : 0.0f;
  }
  for (int r = 0; r < N; ++r) {
    const std::size_t off = static_cast<std::size_t>(r) * C + c0;
    const float* __restrict x = inp + off;
    const float* __restrict dy = dout + off;
    const float m = mean[r], s = rstd[r];
    for (int i = 0; i < w; ++i) {
      aw[i] += (x[i] - m) * s * dy[i];
      ab[i] += dy[i];
    }
  }
  for (int i = 0; i < w; ++i) {
    if (dweight) dweight[c0 + i] = aw[i];
    if (dbias) dbias[c0 + i] = ab[i];
  }
}

void check_sizes(int N, int C) {
  if (N < 0 || C <= 0) throw std::invalid_argument("layernorm: need N >= 0 and C > 0");
}

}  // namespace

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int N, int C, float eps) {
  check_sizes(N, C);
  parallel_for(N, static_cast<std::int64_t>(N) * C > 16384, [&](int r) {
    const std::size_t off = static_cast<std::size_t>(r) * C;
    forward_row(out + off, mean ? mean + r : nullptr, rstd ? rstd + r : nullptr, inp + off, weight,
                bias, C, eps);
  });
}

void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                        const float* inp, const float* weight, const float* mean, const float* rstd,
                        int N, int C) {
  check_sizes(N, C);
  if (N == 0) return;
  const bool big = static_cast<std::int64_t>(N) * C > 16384;
  if (dinp) {
    constexpr int kRows = 16;  // rows per task: each row's dinp is its own
    const int tasks = (N + kRows - 1) / kRows;
    parallel_for(tasks, big, [&](int t) {
      backward_rows(dinp, dout, inp, weight, mean, rstd, t * kRows, std::min(N, (t + 1) * kRows),
                    C);
    });
  }
  if (dweight || dbias) {
    const int blocks = (C + kColumnBlock - 1) / kColumnBlock;
    parallel_for(blocks, big, [&](int b) {
      const int c0 = b * kColumnBlock;
      parameter_columns(dweight, dbias, dout, inp, mean, rstd, N, C, c0,
                        std::min(C - c0, kColumnBlock));
    });
  }
}

}  // namespace mb::kernels::cpu
