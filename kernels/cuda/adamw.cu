// AdamW and gradient clipping: elementwise kernels over the flat buffers, and a two-pass
// double-precision sum of squares. Pass 1: block k sums the fixed chunk
// [k · kChunk, (k + 1) · kChunk) (each thread a strided share, then a shared-memory tree)
// into partial[k]; pass 2: one block sums the partials the same way. The chunks, the strides
// and the trees depend on n only, so the sum is bit-reproducible; no atomics are involved.
#include "cuda/adamw.cuh"

#include "cpu/adamw.hpp"  // adamw_bias_correction, shared with the CPU twin
#include "cuda/common.cuh"

#include <cuda_bf16.h>

#include <cmath>
#include <stdexcept>

namespace mb::kernels::cuda {
namespace {

constexpr int kNormBlock = 512;                       // threads of both reduction passes
constexpr std::size_t kChunk = std::size_t{1} << 16;  // elements per pass-1 block

__global__ void adamw_kernel(float* p, std::uint16_t* p_bf16, const float* g, float* m, float* v,
                             std::size_t n, float lr, float b1, float b2, float eps, float wd,
                             float c1, float c2) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const float gi = g[i];
    const float mi = b1 * m[i] + (1.0f - b1) * gi;
    const float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float mhat = mi / c1, vhat = vi / c2;
    const float pi = p[i] - lr * (mhat / (sqrtf(vhat) + eps) + wd * p[i]);
    p[i] = pi;
    if (p_bf16) p_bf16[i] = __bfloat16_as_ushort(__float2bfloat16_rn(pi));
  }
}

__global__ void scale_kernel(float* g, std::size_t n, float s) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride)
    g[i] *= s;
}

// Tree sum of the block's kNormBlock values in `s` (shared); thread 0 gets the total, the
// other threads 0. The pairing (i with i + half) is fixed, so the result is too. Only thread 0
// reads s[0] after the last step, which it wrote itself: no other thread reads it unordered
// (racecheck would call that a hazard).
__device__ double block_tree_sum(double* s) {
  for (int half = kNormBlock / 2; half > 0; half /= 2) {
    __syncthreads();
    if (static_cast<int>(threadIdx.x) < half) s[threadIdx.x] += s[threadIdx.x + half];
  }
  return threadIdx.x == 0 ? s[0] : 0.0;
}

// Pass 1: partial[k] = sum of g[i]² over chunk k (products in double are exact).
__global__ void __launch_bounds__(kNormBlock)
    squares_kernel(double* partial, const float* g, std::size_t n) {
  __shared__ double s[kNormBlock];
  const std::size_t begin = static_cast<std::size_t>(blockIdx.x) * kChunk;
  const std::size_t end = begin + kChunk < n ? begin + kChunk : n;
  double acc = 0.0;
  for (std::size_t i = begin + threadIdx.x; i < end; i += kNormBlock) {
    const double x = g[i];
    acc += x * x;
  }
  s[threadIdx.x] = acc;
  const double total = block_tree_sum(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

// Pass 2: one block; *out = sum of partial[0..count).
__global__ void __launch_bounds__(kNormBlock)
    sum_partials_kernel(double* out, const double* partial, std::size_t count) {
  __shared__ double s[kNormBlock];
  double acc = 0.0;
  for (std::size_t i = threadIdx.x; i < count; i += kNormBlock) acc += partial[i];
  s[threadIdx.x] = acc;
  const double total = block_tree_sum(s);
  if (threadIdx.x == 0) *out = total;
}

}  // namespace

void adamw_step(float* params, std::uint16_t* params_bf16, const float* grads, float* m, float* v,
                std::size_t n, long t, float lr, float beta1, float beta2, float eps,
                float weight_decay) {
  if (t < 1) throw std::invalid_argument("adamw_step: the step number t starts at 1");
  // Bias corrections on the host, by the CPU twin's own function.
  const float c1 = kernels::cpu::adamw_bias_correction(beta1, t);
  const float c2 = kernels::cpu::adamw_bias_correction(beta2, t);
  if (n == 0) return;
  adamw_kernel<<<detail::grid_size(n), detail::kBlock>>>(params, params_bf16, grads, m, v, n, lr,
                                                         beta1, beta2, eps, weight_decay, c1, c2);
  MB_CUDA_CHECK_LAUNCH();
}

double grad_norm_squared(const float* g, std::size_t n) {
  if (n == 0) return 0.0;
  // One block per chunk: for n up to 2^47 the chunk count stays below gridDim.x's limit.
  const std::size_t chunks = (n + kChunk - 1) / kChunk;
  detail::Scratch<double> partial(chunks + 1);  // the last slot receives the total
  squares_kernel<<<static_cast<unsigned>(chunks), kNormBlock>>>(partial.get(), g, n);
  MB_CUDA_CHECK_LAUNCH();
  sum_partials_kernel<<<1, kNormBlock>>>(partial.get() + chunks, partial.get(), chunks);
  MB_CUDA_CHECK_LAUNCH();
  double total = 0.0;
  MB_CUDA_CHECK(
      cudaMemcpyAsync(&total, partial.get() + chunks, sizeof(double), cudaMemcpyDeviceToHost, 0));
  MB_CUDA_CHECK(cudaStreamSynchronize(0));
  return total;
}

void scale_grads(float* g, std::size_t n, float s) {
  if (n == 0) return;
  scale_kernel<<<detail::grid_size(n), detail::kBlock>>>(g, n, s);
  MB_CUDA_CHECK_LAUNCH();
}

float clip_grad_norm(float* g, std::size_t n, float max_norm) {
  const double norm = std::sqrt(grad_norm_squared(g, n));
  if (norm > max_norm) scale_grads(g, n, static_cast<float>(max_norm / norm));
  return static_cast<float>(norm);
}

}  // namespace mb::kernels::cuda
