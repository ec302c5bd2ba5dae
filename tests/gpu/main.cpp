// The runner of the GPU parity tests (`meson test --suite gpu`): every CUDA twin in
// kernels/cuda/ against its CPU reference in kernels/cpu/.
//
// Without a usable CUDA device (none installed, no driver, a driver too old for this
// runtime) it prints one line saying why and exits with 77, which Meson reports as SKIP.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cuda_runtime.h>

#include <cstdio>

int main(int argc, char** argv) {
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess || count == 0) {
        std::printf("gpu tests skipped: no CUDA device (%s)\n",
                    err != cudaSuccess ? cudaGetErrorString(err)
                                       : "cudaGetDeviceCount reports 0 devices");
        return 77;
    }
    doctest::Context context(argc, argv);
    return context.run();
}
