// The CUDA backend as a module loaded on first use. cuBLASLt alone costs a process about 210 MB
// of resident memory as soon as it is loaded (relocations and its registered GPU code), which a
// run on the CPU never uses: `megabyte --version` took 228 MB with the CUDA libraries linked.
// So the CUDA backend, its kernels and the NCCL collectives are built into megabyte-cuda.so
// (tools/meson.build), which the program opens only when it asks about GPUs; a build without
// nvcc has no module and says so.
#pragma once

#include <memory>
#include <string>

namespace mb::dist {
class Collectives;
class Job;
}  // namespace mb::dist

namespace mb::backend {

class Backend;

// What the module provides (cuda_backend.cpp, nccl_collectives.cpp).
struct CudaModule {
  std::unique_ptr<Backend> (*make_backend)();
  // The number of CUDA devices, or 0 with the runtime's reason in `why`.
  int (*device_count)(std::string* why);
  // cudaSetDevice(index).
  void (*set_device)(int index);
  // NCCL between the ranks' GPUs; null where the module was built without NCCL.
  std::unique_ptr<dist::Collectives> (*make_nccl_collectives)(dist::Job& job);
};

// The module, opened once per process: the one linked into this executable (the gpu tests link
// it whole), else megabyte-cuda.so beside the executable (the build tree) or in the installed
// module directory. Null, with the reason in `why`, where there is none or it does not open.
const CudaModule* cuda_module(std::string* why);

// Whether the NVIDIA driver's library (libcuda.so.1) opens: without it no GPU can be used, which
// the default device's choice learns without opening the module (and loading cuBLAS).
bool cuda_driver_present();

}  // namespace mb::backend

// The module's one exported symbol.
extern "C" const mb::backend::CudaModule* megabyte_cuda_module();
