// Residual add: memory bound, one grid-stride elementwise kernel per direction. Each element
// is one fp32 addition, so the results equal the CPU twin's exactly.
#include "cuda/residual.cuh"

#include "cuda/common.cuh"

namespace mb::kernels::cuda {
namespace {

// No __restrict__ on out: it may alias a or b. Each thread reads element i before writing it,
// so in-place use is safe.
__global__ void residual_forward_kernel(float* out, const float* a, const float* b, std::size_t n) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride)
    out[i] = a[i] + b[i];
}

// da and db are both handled by one launch; either may be null.
__global__ void residual_backward_kernel(float* da, float* db, const float* dout, std::size_t n) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const float g = dout[i];
    if (da) da[i] += g;
    if (db) db[i] += g;
  }
}

}  // namespace

void residual_forward(float* out, const float* a, const float* b, std::size_t n) {
  if (n == 0) return;
  residual_forward_kernel<<<detail::grid_size(n), detail::kBlock>>>(out, a, b, n);
  MB_CUDA_CHECK_LAUNCH();
}

void residual_backward(float* da, float* db, const float* dout, std::size_t n) {
  if (n == 0 || (!da && !db)) return;
  residual_backward_kernel<<<detail::grid_size(n), detail::kBlock>>>(da, db, dout, n);
  MB_CUDA_CHECK_LAUNCH();
}

}  // namespace mb::kernels::cuda
