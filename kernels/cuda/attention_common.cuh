// Device code the two fused causal attentions share (attention.cu: any length, tiled;
// short_attention.cu: a whole short sequence per block): the qkv / out / lse layouts, warp
// reductions, a row dot product, staging rows of one head into shared memory, and the opt-in
// to more than 48 KiB of dynamic shared memory. For .cu files only (device code).
#pragma once

#include "cuda/common.cuh"

#include <cstddef>

namespace mb::kernels::cuda::attention_detail {

constexpr int kWarp = 32;
constexpr unsigned kFull = 0xffffffffu;

// Index helpers for the layouts qkv [B, T, 3, H, d], out [B, T, H, d], lse [B, H, T].
struct Layout {
  int T, H, d;
  __device__ std::size_t qkv(int b, int t, int which, int h) const {  // 0 q, 1 k, 2 v
    return ((static_cast<std::size_t>(b) * T + t) * 3 + which) * H * d +
           static_cast<std::size_t>(h) * d;
  }
  __device__ std::size_t out(int b, int t, int h) const {
    return (static_cast<std::size_t>(b) * T + t) * H * d + static_cast<std::size_t>(h) * d;
  }
  __device__ std::size_t lse(int b, int h, int t) const {
    return (static_cast<std::size_t>(b) * H + h) * T + t;
  }
  // Floats from one position to the next: of qkv, of out (and dout).
  __host__ __device__ std::size_t qkv_stride() const { return 3 * static_cast<std::size_t>(H) * d; }
  __host__ __device__ std::size_t out_stride() const { return static_cast<std::size_t>(H) * d; }
};

// Butterfly reductions: every lane ends with the same value (each step adds the same two
// numbers on both partners, and fp32 addition is commutative).
__device__ inline float warp_max(float v) {
  for (int o = kWarp / 2; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(kFull, v, o));
  return v;
}
__device__ inline float warp_sum(float v) {
  for (int o = kWarp / 2; o > 0; o /= 2) v += __shfl_xor_sync(kFull, v, o);
  return v;
}

// a · b over d elements, added in increasing order.
__device__ inline float dot(const float* a, const float* b, int d) {
  float acc = 0.0f;
  for (int e = 0; e < d; ++e) acc += a[e] * b[e];
  return acc;
}

// Copies rows 0 .. n - 1 of one head (row stride `stride` floats, starting at `src` for row 0)
// into dst[r][0..d) with row pitch `pitch`, each value times `scale`; the whole block takes
// part.
__device__ inline void stage_rows(float* dst, int pitch, const float* src, std::size_t stride,
                                  int n, int d, float scale) {
  for (int idx = static_cast<int>(threadIdx.x); idx < n * d; idx += blockDim.x) {
    const int r = idx / d, e = idx % d;
    dst[r * pitch + e] = src[static_cast<std::size_t>(r) * stride + e] * scale;
  }
}

// B · H · tiles blocks in one grid dimension; std::invalid_argument beyond INT_MAX.
unsigned blocks(int B, int H, int tiles);

// D[b, h, t] = dout[b, t, h, :] · out[b, t, h, :] for all rows = B · T · H of L, in fp32 and
// in stream-ordered scratch: what the tiled attentions' backward passes start from
// (attention.cu). rows < INT_MAX: the callers' buffers hold 3 · rows · d floats.
struct RowDots {
  RowDots(const float* dout, const float* out, const Layout& L, int B);
  int rows;
  detail::Scratch<float> values;
};

// Kernels that stage more than the default 48 KiB of dynamic shared memory must opt in.
template <class Kernel>
void allow_smem(Kernel kernel, std::size_t bytes) {
  if (bytes > 48 * 1024)
    MB_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(bytes)));
}

}  // namespace mb::kernels::cuda::attention_detail
