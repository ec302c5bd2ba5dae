// Layer normalisation. Row statistics: one warp per row, each lane summing a strided share of
// the row and the lanes combined by a butterfly of shuffles: a fixed reduction tree, so the
// same row always gives the same bits. Parameter gradients: the two-pass column sums of
// colsum.cuh (per-task slots, added in task order), never atomics.
#include "cuda/layernorm.cuh"

#include "cuda/colsum.cuh"
#include "cuda/common.cuh"

#include <stdexcept>

namespace mb::kernels::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kRowsPerBlock = 8;  // warps per block, one row each

// Sum over the 32 lanes; every lane gets the total, added in the same order on every lane.
__device__ float warp_sum(float v) {
#pragma unroll
  for (int m = kWarp / 2; m > 0; m /= 2) v += __shfl_xor_sync(0xFFFFFFFFu, v, m);
  return v;
}

__global__ void forward_kernel(float* out, float* mean, float* rstd, const float* inp,
                               const float* weight, const float* bias, int N, int C, float eps) {
  const int row = static_cast<int>(blockIdx.x) * kRowsPerBlock + static_cast<int>(threadIdx.y);
  if (row >= N) return;  // whole warp leaves together: the shuffles below stay full-warp
  const int lane = static_cast<int>(threadIdx.x);
  const std::size_t off = static_cast<std::size_t>(row) * C;
  const float* x = inp + off;
  float s = 0.0f;
  for (int i = lane; i < C; i += kWarp) s += x[i];
  const float m = warp_sum(s) / static_cast<float>(C);
  // Second pass over the centred values: keeps precision for rows with a large offset.
  float sq = 0.0f;
  for (int i = lane; i < C; i += kWarp) {
    const float d = x[i] - m;
    sq += d * d;
  }
  // IEEE division and square root (nvcc's defaults without --use_fast_math), as the CPU.
  const float r = 1.0f / sqrtf(warp_sum(sq) / static_cast<float>(C) + eps);
  float* y = out + off;
  for (int i = lane; i < C; i += kWarp) y[i] = (x[i] - m) * r * weight[i] + bias[i];
  if (lane == 0) {
    if (mean) mean[row] = m;
    if (rstd) rstd[row] = r;
  }
}

// dinp = rstd · (dnorm - mean(dnorm) - norm · mean(dnorm · norm)), dnorm = dout · weight:
// one warp per row, as the forward.
__global__ void backward_dinp_kernel(float* dinp, const float* dout, const float* inp,
                                     const float* weight, const float* mean, const float* rstd,
                                     int N, int C) {
  const int row = static_cast<int>(blockIdx.x) * kRowsPerBlock + static_cast<int>(threadIdx.y);
  if (row >= N) return;
  const int lane = static_cast<int>(threadIdx.x);
  const std::size_t off = static_cast<std::size_t>(row) * C;
  const float* x = inp + off;
  const float* dy = dout + off;
  const float m = mean[row], s = rstd[row];
  float sum_dn = 0.0f, sum_dn_n = 0.0f;
  for (int i = lane; i < C; i += kWarp) {
    const float n = (x[i] - m) * s;
    const float dn = dy[i] * weight[i];
    sum_dn += dn;
    sum_dn_n += dn * n;
  }
  const float a = warp_sum(sum_dn) / static_cast<float>(C);
  const float c = warp_sum(sum_dn_n) / static_cast<float>(C);
  float* dx = dinp + off;
  for (int i = lane; i < C; i += kWarp) {
    const float n = (x[i] - m) * s;
    dx[i] += s * (dy[i] * weight[i] - a - n * c);
  }
}

// Pass 1 of dweight/dbias: thread (column, task) sums norm · dout and dout over its rows, in
// row order, into its own slots: pw[task * C + c] and pb[task * C + c] (either may be null).
__global__ void backward_params_kernel(float* pw, float* pb, const float* dout, const float* inp,
                                       const float* mean, const float* rstd, int N, int C,
                                       detail::RowSplit split) {
  const int c = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  const int t = static_cast<int>(blockIdx.y * blockDim.y + threadIdx.y);
  if (c >= C || t >= split.tasks) return;
  float sw = 0.0f, sb = 0.0f;
  for (int r = split.begin(t); r < split.end(t, N); ++r) {
    const std::size_t i = static_cast<std::size_t>(r) * C + c;
    const float dy = dout[i];
    sw += (inp[i] - mean[r]) * rstd[r] * dy;
    sb += dy;
  }
  const std::size_t slot = static_cast<std::size_t>(t) * C + c;
  if (pw) pw[slot] = sw;
  if (pb) pb[slot] = sb;
}

void check_sizes(int N, int C) {
  if (N < 0 || C <= 0) throw std::invalid_argument("layernorm: need N >= 0 and C > 0");
}

dim3 row_block() { return dim3(kWarp, kRowsPerBlock); }
unsigned row_grid(int N) { return static_cast<unsigned>(detail::ceil_div(N, kRowsPerBlock)); }

}  // namespace

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int N, int C, float eps) {
  check_sizes(N, C);
  if (N == 0) return;
  forward_kernel<<<row_grid(N), row_block()>>>(out, mean, rstd, inp, weight, bias, N, C, eps);
  MB_CUDA_CHECK_LAUNCH();
}

void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                        const float* inp, const float* weight, const float* mean, const float* rstd,
                        int N, int C) {
  check_sizes(N, C);
  if (N == 0) return;
  if (dinp) {
    backward_dinp_kernel<<<row_grid(N), row_block()>>>(dinp, dout, inp, weight, mean, rstd, N, C);
    MB_CUDA_CHECK_LAUNCH();
  }
  if (!dweight && !dbias) return;
  const detail::RowSplit split = detail::row_split(N);
  const std::size_t slots = static_cast<std::size_t>(split.tasks) * C;
  // Slots for dweight then for dbias, each tasks × C.
  detail::Scratch<float> partial(2 * slots);
  float* pw = dweight ? partial.get() : nullptr;
  float* pb = dbias ? partial.get() + slots : nullptr;
  backward_params_kernel<<<detail::colsum_grid(C, split.tasks), detail::colsum_block()>>>(
      pw, pb, dout, inp, mean, rstd, N, C, split);
  MB_CUDA_CHECK_LAUNCH();
  if (dweight) detail::add_column_partials(dweight, pw, split.tasks, C, C);
  if (dbias) detail::add_column_partials(dbias, pb, split.tasks, C, C);
}

}  // namespace mb::kernels::cuda
