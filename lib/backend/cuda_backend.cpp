// The CUDA backend: kernels/cuda/ on device memory, everything on the default stream in call
// order (the kernels' convention, kernels/cuda/ops.hpp). Built only where nvcc was found, into
// the CUDA module (cuda_module.hpp), with the NCCL collectives where NCCL was found.
#include <cuda_runtime.h>

#include <mutex>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "backend/backend.hpp"
#include "backend/cuda_module.hpp"
#include "backend/device_peaks.hpp"
#include "core/error.hpp"
#include "dist/collectives.hpp"
#include "cuda/common.cuh"
#include "cuda/ops.hpp"

namespace mb::backend {

static_assert(kCudaMaxHeadDim == kernels::cuda::kAttentionMaxHeadDim);
static_assert(kCudaMatmulWorkspaceBytes == kernels::cuda::kMatmulWorkspaceBytes);

namespace {

#define MB_KERNELS ::mb::kernels::cuda
#include "backend/kernel_ops.inc"
#undef MB_KERNELS

std::string mib(std::size_t bytes) {
  return std::to_string((bytes + (1u << 20) - 1) >> 20) + " MiB";
}

class CudaBackend final : public KernelOps {
 public:
  CudaBackend() {
    MB_CUDA_CHECK(cudaGetDevice(&device_));
    MB_CUDA_CHECK(cudaGetDeviceProperties(&props_, device_));
    peaks_ = device_peaks(props_.name);
    // The kernels' temporaries come from the device's default stream-ordered pool; its high
    // watermark counts from the start of the process (not reset here: another backend in the
    // same process, such as bench's GEMM measurement, must not restart the count).
    MB_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool_, device_));
    // Keep what the pool has grown to: with the default threshold (0) it gives its memory back
    // to the driver at every synchronisation (each step has several), and maps it again for
    // the next call's temporaries.
    std::uint64_t keep = UINT64_MAX;
    MB_CUDA_CHECK(cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrReleaseThreshold, &keep));
  }
  Device device() const override { return Device::cuda; }
  std::string description() const override {
    return std::string(props_.name) + " (sm_" + std::to_string(props_.major) +
           std::to_string(props_.minor) + ", " + mib(props_.totalGlobalMem) + ")";
  }
  void* allocate(std::size_t bytes) override {
    void* p = nullptr;
    const cudaError_t err = cudaMalloc(&p, bytes);
    if (err != cudaSuccess) {
      static_cast<void>(cudaGetLastError());  // clear the (non-sticky) allocation error
      std::size_t free_bytes = 0, total = 0;
      static_cast<void>(cudaMemGetInfo(&free_bytes, &total));
      throw Error(props_.name,
                  "cannot allocate " + mib(bytes) + " of device memory (" + mib(free_bytes) +
                      " free of " + mib(total) + ")",
                  "`megabyte bench --memory` shows what a config needs; lower train.batch_size "
                  "(raising train.grad_accumulation keeps the step the same) or model.context");
    }
    const std::lock_guard<std::mutex> lock(mutex_);
    sizes_[p] = bytes;
    held_ += bytes;
    if (held_ > peak_held_) peak_held_ = held_;
    return p;
  }
  void release(void* p) override {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      auto it = sizes_.find(p);
      if (it != sizes_.end()) {
        held_ -= it->second;
        sizes_.erase(it);
      }
    }
    static_cast<void>(cudaFree(p));
  }
  void upload(void* dst, const void* src, std::size_t bytes) override {
    if (bytes) MB_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
  }
  void download(void* dst, const void* src, std::size_t bytes) override {
    if (bytes) MB_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
  }
  void copy(void* dst, const void* src, std::size_t bytes) override {
    if (bytes && dst != src)
      MB_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, 0));
  }
  void copy_rows(void* dst, std::size_t dst_pitch, const void* src, std::size_t src_pitch,
                 std::size_t row_bytes, std::size_t rows) override {
    check_copy_rows(dst_pitch, src_pitch, row_bytes, rows);
    if (row_bytes && rows)
      MB_CUDA_CHECK(cudaMemcpy2DAsync(dst, dst_pitch, src, src_pitch, row_bytes, rows,
                                      cudaMemcpyDeviceToDevice, 0));
  }
  void zero(void* dst, std::size_t bytes) override {
    if (bytes) MB_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, 0));
  }
  bool shares_host_memory() const override { return false; }
  void synchronize() override { MB_CUDA_CHECK(cudaDeviceSynchronize()); }
  int max_head_dim() const override { return kernels::cuda::kAttentionMaxHeadDim; }
  std::size_t peak_device_bytes() const override {
    std::uint64_t pool_high = 0;
    static_cast<void>(cudaMemPoolGetAttribute(pool_, cudaMemPoolAttrReservedMemHigh, &pool_high));
    const std::lock_guard<std::mutex> lock(mutex_);
    return peak_held_ + static_cast<std::size_t>(pool_high) + kernels::cuda::kMatmulWorkspaceBytes;
  }
  std::size_t available_bytes() const override {
    std::size_t free_bytes = 0, total = 0;
    if (cudaMemGetInfo(&free_bytes, &total) != cudaSuccess) {
      static_cast<void>(cudaGetLastError());
      return 0;
    }
    return free_bytes;
  }
  double peak_bf16_flops() const override { return peaks_.bf16; }
  double peak_fp32_flops() const override { return peaks_.fp32; }

 private:
  int device_ = 0;
  cudaDeviceProp props_{};
  DevicePeaks peaks_{};
  cudaMemPool_t pool_ = nullptr;
  mutable std::mutex mutex_;
  std::unordered_map<void*, std::size_t> sizes_;
  std::size_t held_ = 0, peak_held_ = 0;
};

int cuda_device_count(std::string* why) {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    if (why) *why = std::string("no CUDA device (") + cudaGetErrorString(err) + ")";
    static_cast<void>(cudaGetLastError());
    return 0;
  }
  if (n == 0 && why) *why = "no CUDA device found";
  return n;
}

void set_cuda_device(int index) { MB_CUDA_CHECK(cudaSetDevice(index)); }

std::unique_ptr<Backend> make_cuda_backend() { return std::make_unique<CudaBackend>(); }

}  // namespace

}  // namespace mb::backend

extern "C" const mb::backend::CudaModule* megabyte_cuda_module() {
  static const mb::backend::CudaModule module{
      mb::backend::make_cuda_backend,
      mb::backend::cuda_device_count,
      mb::backend::set_cuda_device,
#ifdef MEGABYTE_HAVE_NCCL
      mb::dist::make_nccl_collectives,
#else
      nullptr,
#endif
  };
  return &module;
}
