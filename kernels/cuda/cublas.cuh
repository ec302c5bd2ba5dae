// The cuBLAS handle shared by the CUDA kernels, and cuBLAS error checks.
//
// Internal to the .cu files.
#pragma once

#include <cublas_v2.h>

#include <stdexcept>
#include <string>

namespace mb::kernels::cuda::detail {

inline void check_cublas(cublasStatus_t status, const char* expr, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cuBLAS error at ") + file + ":" + std::to_string(line) +
                             ": " + expr + ": " + cublasGetStatusString(status));
}

// The handle for the current device: created on first use, bound to the default stream (the
// stream every kernel of this backend runs on), in fp32 math without TF32, so fp32 products
// stay comparable with the CPU backend. Safe to call from several threads.
cublasHandle_t cublas_handle();

}  // namespace mb::kernels::cuda::detail

#define MB_CUBLAS_CHECK(expr) \
  ::mb::kernels::cuda::detail::check_cublas((expr), #expr, __FILE__, __LINE__)
