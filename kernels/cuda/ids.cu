// Device-side index validation (see ids.cuh).
#include "cuda/ids.cuh"

#include "cuda/common.cuh"

#include <stdexcept>
#include <string>

namespace mb::kernels::cuda::detail {
namespace {

// Every offending row proposes itself with an integer atomicMin: min is exact, commutative
// and associative, so the answer (the first offending row) does not depend on the order in
// which threads get there.
__global__ void first_outside_kernel(unsigned* first, const std::int32_t* ids, int N,
                                     std::int32_t lo, std::int32_t hi) {
  // 64-bit counter: n + stride must not overflow for N close to INT_MAX.
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t n = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; n < N;
       n += stride) {
    const std::int32_t id = ids[n];
    if (id < lo || id >= hi) atomicMin(first, static_cast<unsigned>(n));
  }
}

}  // namespace

int first_outside(const std::int32_t* ids, int N, std::int32_t lo, std::int32_t hi) {
  if (N <= 0) return -1;
  Scratch<unsigned> first(1);
  // All bits set: larger than any row index, and read back as -1 when nothing was found.
  MB_CUDA_CHECK(cudaMemsetAsync(first.get(), 0xFF, sizeof(unsigned), 0));
  first_outside_kernel<<<grid_size(static_cast<std::size_t>(N)), kBlock>>>(first.get(), ids, N, lo,
                                                                           hi);
  MB_CUDA_CHECK_LAUNCH();
  unsigned host = 0;
  MB_CUDA_CHECK(cudaMemcpyAsync(&host, first.get(), sizeof(unsigned), cudaMemcpyDeviceToHost, 0));
  MB_CUDA_CHECK(cudaStreamSynchronize(0));
  return host == 0xFFFFFFFFu ? -1 : static_cast<int>(host);
}

void check_ids_on_device(const std::int32_t* ids, int N, std::int32_t lo, std::int32_t hi,
                         const char* what, const char* noun, const char* rule) {
  const int n = first_outside(ids, N, lo, hi);
  if (n < 0) return;
  std::int32_t id = 0;
  MB_CUDA_CHECK(cudaMemcpy(&id, ids + n, sizeof(id), cudaMemcpyDeviceToHost));
  throw std::out_of_range(std::string(what) + ": " + noun + " " + std::to_string(id) + " at row " +
                          std::to_string(n) + " " + rule);
}

}  // namespace mb::kernels::cuda::detail
