// One block per (sequence, head), three passes over the cache, as the CPU twin's loops:
//   1. each thread takes positions j = tid, tid + blockDim, ...: the dot q·k_j (d <= 128
//      products, read from the row of k_j), scaled, written to scores; a block-wide max;
//   2. each thread exponentiates its scores (minus the max) and sums them; a block-wide sum;
//   3. each thread owns output elements e (e = tid, tid + blockDim, ... < d) and sums
//      p_j · v_j[e] over all j in order, so the value rows are read coalesced across threads.
// Generation runs this once per layer and step with n up to the window's positions: the cost
// is reading the cache once, which is what a step must do anyway. Deterministic: every sum is
// in a fixed order (the block reductions use a fixed tree).
#include "cuda/attention_step.cuh"

#include "cuda/attention.cuh"
#include "cuda/common.cuh"

#include "cpu/bf16.hpp"  // bf16_value, __host__ __device__

#include <climits>
#include <cstdint>
#include <cmath>
#include <stdexcept>
#include <string>

namespace mb::kernels::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kWarp = 32;

// Block-wide reduction through shared memory: warp shuffles, then the first warp combines the
// warps' results. Every thread returns the total.
template <bool Max>
__device__ float block_reduce(float v, float* shared) {
  for (int o = kWarp / 2; o > 0; o /= 2) {
    const float other = __shfl_xor_sync(0xFFFFFFFFu, v, o);
    v = Max ? fmaxf(v, other) : v + other;
  }
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kThreads / kWarp ? shared[lane] : (Max ? -INFINITY : 0.0f);
    for (int o = kWarp / 2; o > 0; o /= 2) {
      const float other = __shfl_xor_sync(0xFFFFFFFFu, v, o);
      v = Max ? fmaxf(v, other) : v + other;
    }
    if (lane == 0) shared[0] = v;
  }
  __syncthreads();
  const float total = shared[0];
  __syncthreads();  // shared is reused by the next reduction
  return total;
}

// A cache element as fp32: itself, or the exact value of a bf16 pattern.
__device__ inline float widen(float x) { return x; }
__device__ inline float widen(std::uint16_t x) { return cpu::bf16_value(x); }

// Block b · H + h: head h of sequence b. out and scores are dense [B, H, ...]; q, k and v of
// sequence b start at its own offsets (q_stride, batch_stride). Cache: float or bf16 patterns.
template <class Cache>
__global__ void attention_step_kernel(float* __restrict out, float* __restrict scores,
                                      const float* __restrict q, const Cache* __restrict k,
                                      const Cache* __restrict v, int n, int H, int d,
                                      std::size_t q_stride, std::size_t stride,
                                      std::size_t batch_stride, float scale) {
  __shared__ float qs[kAttentionMaxHeadDim];
  __shared__ float red[kThreads / kWarp];
  const std::size_t row = blockIdx.x;  // b · H + h
  const std::size_t b = row / static_cast<std::size_t>(H);
  const std::size_t head = static_cast<std::size_t>(row % static_cast<std::size_t>(H)) * d;
  const float* qh = q + b * q_stride + head;
  const Cache* kh = k + b * batch_stride + head;
  const Cache* vh = v + b * batch_stride + head;
  float* s = scores + row * n;
  for (int e = threadIdx.x; e < d; e += blockDim.x) qs[e] = qh[e];
  __syncthreads();

  float mx = -INFINITY;
  for (int j = threadIdx.x; j < n; j += blockDim.x) {
    const Cache* kj = kh + static_cast<std::size_t>(j) * stride;
    float dot = 0.0f;
    for (int e = 0; e < d; ++e) dot = fmaf(qs[e], widen(kj[e]), dot);
    s[j] = dot * scale;
    mx = fmaxf(mx, s[j]);
  }
  mx = block_reduce<true>(mx, red);

  float sum = 0.0f;
  for (int j = threadIdx.x; j < n; j += blockDim.x) {
    const float p = expf(s[j] - mx);
    s[j] = p;
    sum += p;
  }
  sum = block_reduce<false>(sum, red);  // also orders the writes of s before the reads below
  const float inv = 1.0f / sum;

  for (int e = threadIdx.x; e < d; e += blockDim.x) {
    float acc = 0.0f;
    for (int j = 0; j < n; ++j)
      acc = fmaf(s[j], widen(vh[static_cast<std::size_t>(j) * stride + e]), acc);
    out[row * d + e] = acc * inv;
  }
}

template <class Cache>
void launch_step(float* out, float* scores, const float* q, const Cache* k, const Cache* v, int B,
                 int n, int H, int d, std::size_t q_stride, std::size_t stride,
                 std::size_t batch_stride) {
  if (B < 1 || n < 1 || H < 1 || d < 1)
    throw std::invalid_argument("attention_step: need B, n, H, d >= 1 (a position sees itself)");
  if (d > kAttentionMaxHeadDim)
    throw std::invalid_argument("attention_step: head dimension " + std::to_string(d) +
                                " exceeds " + std::to_string(kAttentionMaxHeadDim));
  if (static_cast<long long>(B) * H > INT_MAX)
    throw std::invalid_argument("attention_step: B * H exceeds the grid");
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  attention_step_kernel<Cache><<<static_cast<unsigned>(B) * static_cast<unsigned>(H), kThreads>>>(
      out, scores, q, k, v, n, H, d, q_stride, stride, batch_stride, scale);
  MB_CUDA_CHECK_LAUNCH();
}

}  // namespace

void attention_step(float* out, float* scores, const float* q, const float* k, const float* v,
                    int B, int n, int H, int d, std::size_t q_stride, std::size_t stride,
                    std::size_t batch_stride) {
  launch_step(out, scores, q, k, v, B, n, H, d, q_stride, stride, batch_stride);
}

void attention_step_bf16(float* out, float* scores, const float* q, const std::uint16_t* k,
                         const std::uint16_t* v, int B, int n, int H, int d, std::size_t q_stride,
                         std::size_t stride, std::size_t batch_stride) {
  launch_step(out, scores, q, k, v, B, n, H, d, q_stride, stride, batch_stride);
}

}  // namespace mb::kernels::cuda
