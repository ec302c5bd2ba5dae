// Cross-entropy through the tied head. Matrix products are cuBLAS SGEMMs (row-major buffers
// passed as their column-major transposes); the rest is two small kernels: per-row softmax
// and loss (one warp per row, fixed shuffle trees), and a single-block sum of the row losses
// in double (fixed strides and tree). No atomics, so results are bit-reproducible on one GPU.
#include "cuda/crossentropy.cuh"

#include "cuda/common.cuh"
#include "cuda/cublas.cuh"
#include "cuda/ids.cuh"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace mb::kernels::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kRowsPerBlock = 8;  // warps per block, one row each
constexpr int kSumBlock = 512;    // threads of the single-block loss sum

__device__ float warp_sum(float v) {
#pragma unroll
  for (int m = kWarp / 2; m > 0; m /= 2) v += __shfl_xor_sync(0xFFFFFFFFu, v, m);
  return v;
}

__device__ float warp_max(float v) {
#pragma unroll
  for (int m = kWarp / 2; m > 0; m /= 2) v = fmaxf(v, __shfl_xor_sync(0xFFFFFFFFu, v, m));
  return v;
}

// Per row r < rows of a chunk: row_loss[r] = logsumexp(z) - z[target] (0 when masked); with
// `grad`, z <- dloss · (softmax(z) - onehot(target)) in place, or 0 for a masked row.
__global__ void rows_kernel(float* logits, float* row_loss, const std::int32_t* targets, int rows,
                            int V, bool grad, float dloss) {
  const int r = static_cast<int>(blockIdx.x) * kRowsPerBlock + static_cast<int>(threadIdx.y);
  if (r >= rows) return;  // the whole warp leaves together
  const int lane = static_cast<int>(threadIdx.x);
  float* z = logits + static_cast<std::size_t>(r) * V;
  const int target = targets[r];
  if (target < 0) {
    if (lane == 0) row_loss[r] = 0.0f;
    if (grad)
      for (int v = lane; v < V; v += kWarp) z[v] = 0.0f;
    return;
  }
  float mx = -INFINITY;
  for (int v = lane; v < V; v += kWarp) mx = fmaxf(mx, z[v]);
  mx = warp_max(mx);
  float sum = 0.0f;
  for (int v = lane; v < V; v += kWarp) sum += expf(z[v] - mx);
  const float lse = mx + logf(warp_sum(sum));
  const float zt = z[target];
  if (lane == 0) row_loss[r] = lse - zt;
  if (!grad) return;
  __syncwarp();  // every lane has read z[target] before any lane overwrites it
  for (int v = lane; v < V; v += kWarp) {
    const float g = dloss * expf(z[v] - lse);
    z[v] = v == target ? g - dloss : g;
  }
}

struct DeviceSum {
  double loss;
  long long count;
};

// One block: out->loss = sum of row_loss[n] over rows with targets[n] >= 0 (row_loss may be
// null: count only), out->count = their number. Thread i takes rows i, i + kSumBlock, ...;
// then a fixed tree in shared memory.
__global__ void __launch_bounds__(kSumBlock)
    sum_kernel(DeviceSum* out, const float* row_loss, const std::int32_t* targets, int N) {
  __shared__ double loss[kSumBlock];
  __shared__ long long count[kSumBlock];
  double l = 0.0;
  long long c = 0;
  for (std::int64_t n = threadIdx.x; n < N; n += kSumBlock) {  // 64-bit: no overflow near INT_MAX
    if (targets[n] >= 0) {
      if (row_loss) l += row_loss[n];
      ++c;
    }
  }
  loss[threadIdx.x] = l;
  count[threadIdx.x] = c;
  for (int half = kSumBlock / 2; half > 0; half /= 2) {
    __syncthreads();
    if (static_cast<int>(threadIdx.x) < half) {
      loss[threadIdx.x] += loss[threadIdx.x + half];
      count[threadIdx.x] += count[threadIdx.x + half];
    }
  }
  if (threadIdx.x == 0) *out = DeviceSum{loss[0], count[0]};
}

CrossEntropySum device_sum(const float* row_loss, const std::int32_t* targets, int N) {
  if (N <= 0) return {};
  detail::Scratch<DeviceSum> sum(1);
  sum_kernel<<<1, kSumBlock>>>(sum.get(), row_loss, targets, N);
  MB_CUDA_CHECK_LAUNCH();
  DeviceSum host{};
  MB_CUDA_CHECK(cudaMemcpyAsync(&host, sum.get(), sizeof(host), cudaMemcpyDeviceToHost, 0));
  MB_CUDA_CHECK(cudaStreamSynchronize(0));
  return {host.loss, static_cast<std::int64_t>(host.count)};
}

void check(const std::int32_t* targets, int N, int D, int V, const char* what) {
  if (N < 0 || D <= 0 || V <= 0)
    throw std::invalid_argument(std::string(what) + ": need N >= 0, D > 0 and V > 0");
  const std::string rule = "is not below V = " + std::to_string(V);
  detail::check_ids_on_device(targets, N, std::numeric_limits<std::int32_t>::min(), V, what,
                              "target", rule.c_str());
}

int chunk_rows(int V) { return std::max(1, kCudaCrossEntropyChunkFloats / V); }

// The row-major products, written for column-major cuBLAS: a row-major [R, C] buffer is the
// column-major [C, R] matrix (its transpose) with leading dimension C.
CrossEntropySum run(float* losses, float* dh, float* dE, const float* h, const float* E,
                    const std::int32_t* targets, float dloss, int N, int D, int V, bool grad) {
  if (N == 0) return {};
  cublasHandle_t handle = detail::cublas_handle();
  const int R = chunk_rows(V);
  detail::Scratch<float> logits(static_cast<std::size_t>(std::min(N, R)) * V);
  // Row losses of all N rows stay on the device until the final ordered sum.
  detail::Scratch<float> own_losses(losses ? 0 : static_cast<std::size_t>(N));
  float* row_loss = losses ? losses : own_losses.get();
  const float one = 1.0f, zero = 0.0f;
  for (int n0 = 0; n0 < N; n0 += R) {
    const int rows = std::min(R, N - n0);
    const float* hc = h + static_cast<std::size_t>(n0) * D;
    // logits[rows, V] = hc[rows, D] · E[V, D]ᵀ, i.e. column-major
    // logitsᵀ[V, rows] = (Eᵀ[D, V])ᵀ · hcᵀ[D, rows].
    MB_CUBLAS_CHECK(cublasSgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, V, rows, D, &one, E, D, hc, D,
                                &zero, logits.get(), V));
    rows_kernel<<<static_cast<unsigned>(detail::ceil_div(rows, kRowsPerBlock)),
                  dim3(kWarp, kRowsPerBlock)>>>(logits.get(), row_loss + n0, targets + n0, rows, V,
                                                grad, dloss);
    MB_CUDA_CHECK_LAUNCH();
    if (!grad) continue;
    if (dh)
      // dh[rows, D] += dlogits[rows, V] · E[V, D], i.e. column-major
      // dhᵀ[D, rows] += Eᵀ[D, V] · dlogitsᵀ[V, rows].
      MB_CUBLAS_CHECK(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, D, rows, V, &one, E, D,
                                  logits.get(), V, &one, dh + static_cast<std::size_t>(n0) * D, D));
    if (dE)
      // dE[V, D] += dlogits[rows, V]ᵀ · hc[rows, D], i.e. column-major
      // dEᵀ[D, V] += hcᵀ[D, rows] · (dlogitsᵀ[V, rows])ᵀ.
      MB_CUBLAS_CHECK(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_T, D, V, rows, &one, hc, D,
                                  logits.get(), V, &one, dE, D));
  }
  return device_sum(row_loss, targets, N);
}

}  // namespace

std::int64_t crossentropy_count(const std::int32_t* targets, int N) {
  return device_sum(nullptr, targets, N).count;
}

CrossEntropySum crossentropy_forward(float* losses, const float* h, const float* E,
                                     const std::int32_t* targets, int N, int D, int V) {
  check(targets, N, D, V, "crossentropy_forward");
  return run(losses, nullptr, nullptr, h, E, targets, 0.0f, N, D, V, false);
}

CrossEntropySum crossentropy_backward(float* dh, float* dE, const float* h, const float* E,
                                      const std::int32_t* targets, float dloss, int N, int D,
                                      int V) {
  check(targets, N, D, V, "crossentropy_backward");
  if (!dh && !dE) return run(nullptr, nullptr, nullptr, h, E, targets, 0.0f, N, D, V, false);
  return run(nullptr, dh, dE, h, E, targets, dloss, N, D, V, true);
}

}  // namespace mb::kernels::cuda
