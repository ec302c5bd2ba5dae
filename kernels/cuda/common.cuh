// Shared plumbing for the CUDA kernels: error checks that throw, launch geometry, and a
// stream-ordered scratch buffer.
//
// Host-only and free of device code, so plain C++ (device_buffer.hpp, the gpu tests) may
// include it as well as the .cu files.
//
// Conventions of the whole CUDA backend:
// - Every function has the signature and the semantics of its twin in kernels/cpu/, in
//   namespace mb::kernels::cuda, and every pointer argument is a device pointer.
// - Work runs on the legacy default stream (stream 0), in call order. A function that only
//   launches kernels returns before they finish; one that returns a value computed on the
//   device (a norm, a loss sum) or must validate device data before writing (ids, targets)
//   waits for it.
// - Errors, including bad arguments the CPU twin rejects, are thrown as exceptions: the same
//   std::invalid_argument / std::out_of_range as the CPU twin, std::runtime_error for CUDA and
//   cuBLAS failures.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <string>

namespace mb::kernels::cuda::detail {

[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* expr, const char* file,
                                          int line) {
  throw std::runtime_error(std::string("CUDA error at ") + file + ":" + std::to_string(line) +
                           ": " + expr + ": " + cudaGetErrorName(err) + ": " +
                           cudaGetErrorString(err));
}

inline void check_cuda(cudaError_t err, const char* expr, const char* file, int line) {
  if (err != cudaSuccess) throw_cuda_error(err, expr, file, line);
}

}  // namespace mb::kernels::cuda::detail

// Throws std::runtime_error("CUDA error at FILE:LINE: EXPR: NAME: description") unless the
// expression returns cudaSuccess.
#define MB_CUDA_CHECK(expr) \
  ::mb::kernels::cuda::detail::check_cuda((expr), #expr, __FILE__, __LINE__)

// After a kernel launch: a bad launch configuration is only reported by cudaGetLastError
// (errors while the kernel runs surface at the next synchronising call).
#define MB_CUDA_CHECK_LAUNCH() MB_CUDA_CHECK(cudaGetLastError())

namespace mb::kernels::cuda::detail {

// Threads per block for the plain elementwise kernels: a multiple of the warp size that keeps
// enough blocks resident per SM on every architecture we build for.
constexpr int kBlock = 256;

// Elementwise kernels walk their range with a grid-stride loop, so the grid never needs more
// blocks than it takes to fill the GPU many times over; capping it keeps the count far below
// the 2^31 - 1 limit of gridDim.x whatever n is (n is a size_t).
constexpr std::size_t kMaxBlocks = std::size_t{1} << 16;

// Blocks for n items at `per_block` items per block (at least 1, at most kMaxBlocks).
inline unsigned grid_size(std::size_t n, std::size_t per_block = kBlock) {
  const std::size_t blocks = (n + per_block - 1) / per_block;
  return static_cast<unsigned>(std::clamp<std::size_t>(blocks, 1, kMaxBlocks));
}

inline int ceil_div(int a, int b) { return (a + b - 1) / b; }

// Temporary device memory for one call (partial sums, a logits chunk), from the device's
// stream-ordered pool: allocation and release are queued on the default stream like the
// kernels that use it, so no call synchronises the device to get or return scratch space, and
// the pool hands the same memory back on the next call (the CUDA backend sets the pool's
// release threshold so that it keeps its memory across synchronisations).
template <class T>
class Scratch {
 public:
  explicit Scratch(std::size_t n) : n_(n) {
    if (n_ > 0) MB_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&ptr_), n_ * sizeof(T), 0));
  }
  ~Scratch() {
    // Not checked: a destructor must not throw, and a failure here would be a sticky
    // context error that the next checked call reports anyway.
    if (ptr_) static_cast<void>(cudaFreeAsync(ptr_, 0));
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  T* get() const { return ptr_; }
  std::size_t size() const { return n_; }

 private:
  T* ptr_ = nullptr;
  std::size_t n_ = 0;
};

}  // namespace mb::kernels::cuda::detail
