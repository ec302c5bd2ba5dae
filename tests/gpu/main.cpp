// The runner of the GPU parity tests (`meson test --suite gpu`): every Backend op on the CUDA
// backend against the CPU backend (the op table, test_backend_ops.cpp), and what is specific to
// the CUDA kernels in kernels/cuda/.
//
// Without a GPU (no NVIDIA kernel driver loaded, or no device) it prints one line saying why
// and exits with 77, which Meson reports as SKIP. Where the NVIDIA driver is loaded but CUDA
// cannot use the device (a driver too old for this runtime, a device in a bad state) that is
// a failure, not a skip: a green run on a GPU machine must mean the tests ran.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cuda_runtime.h>

#include <cstdio>

int main(int argc, char** argv) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    const char* why =
        err != cudaSuccess ? cudaGetErrorString(err) : "cudaGetDeviceCount reports 0 devices";
    std::FILE* driver = std::fopen("/proc/driver/nvidia/version", "r");
    if (driver) {
      std::fclose(driver);
      int runtime = 0, supported = 0;
      static_cast<void>(cudaRuntimeGetVersion(&runtime));
      static_cast<void>(cudaDriverGetVersion(&supported));
      std::printf(
          "gpu tests FAILED to start: the NVIDIA driver is loaded, but CUDA cannot use "
          "a device (%s; this build's runtime is %d, the driver supports up to %d)\n",
          why, runtime, supported);
      return 1;
    }
    std::printf("gpu tests skipped: no CUDA device (%s)\n", why);
    return 77;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
