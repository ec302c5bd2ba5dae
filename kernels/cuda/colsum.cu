// Second pass of the deterministic column sums (see colsum.cuh).
#include "cuda/colsum.cuh"

#include "cuda/common.cuh"

namespace mb::kernels::cuda::detail {
namespace {

// One thread per column; consecutive threads read consecutive columns of a slot (coalesced).
// The loop over slots is sequential by design: it fixes the order of the additions.
__global__ void add_column_partials_kernel(float* dst, const float* partial, int tasks,
                                           std::size_t stride, int C) {
  const int c = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (c >= C) return;
  float acc = dst[c];
#pragma unroll 8
  for (int t = 0; t < tasks; ++t) acc += partial[static_cast<std::size_t>(t) * stride + c];
  dst[c] = acc;
}

}  // namespace

void add_column_partials(float* dst, const float* partial, int tasks, std::size_t stride, int C) {
  if (C <= 0 || tasks <= 0) return;
  add_column_partials_kernel<<<static_cast<unsigned>(ceil_div(C, kBlock)), kBlock>>>(
      dst, partial, tasks, stride, C);
  MB_CUDA_CHECK_LAUNCH();
}

}  // namespace mb::kernels::cuda::detail
