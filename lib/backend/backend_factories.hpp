// Constructors of the two backends; use make_backend(Device) (backend.hpp) rather than these.
#pragma once

#include <memory>
#include <string>

#include "backend/backend.hpp"

namespace mb::backend {

std::unique_ptr<Backend> make_cpu_backend();

// Defined in cuda_backend.cpp, which is built only where nvcc was found (MEGABYTE_HAVE_CUDA).
std::unique_ptr<Backend> make_cuda_backend();
// The number of CUDA devices, or 0 with the runtime's reason in `why`.
int cuda_device_count(std::string* why);
// cudaSetDevice(index).
void set_cuda_device(int index);

}  // namespace mb::backend
