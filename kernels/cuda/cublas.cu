// One cuBLAS handle per device, created lazily (see cublas.cuh).
#include "cuda/cublas.cuh"

#include "cuda/common.cuh"

#include <mutex>
#include <vector>

namespace mb::kernels::cuda::detail {

cublasHandle_t cublas_handle() {
  // Handles are never destroyed: they live as long as the process, and destroying one from a
  // static destructor could run after the CUDA runtime has been torn down.
  static std::mutex mutex;
  static std::vector<cublasHandle_t> handles;
  int device = 0;
  MB_CUDA_CHECK(cudaGetDevice(&device));
  const std::lock_guard<std::mutex> lock(mutex);
  if (handles.size() <= static_cast<std::size_t>(device))
    handles.resize(static_cast<std::size_t>(device) + 1, nullptr);
  cublasHandle_t& h = handles[static_cast<std::size_t>(device)];
  if (!h) {
    cublasHandle_t created = nullptr;
    MB_CUBLAS_CHECK(cublasCreate(&created));
    // cuBLAS gives bit-identical results run to run on one GPU only while a single stream
    // uses its workspace; everything here runs on the default stream.
    MB_CUBLAS_CHECK(cublasSetStream(created, 0));
    // Plain fp32 (no TF32 tensor cores): this is the fp32 twin of the CPU backend.
    MB_CUBLAS_CHECK(cublasSetMathMode(created, CUBLAS_DEFAULT_MATH));
    h = created;
  }
  return h;
}

}  // namespace mb::kernels::cuda::detail
