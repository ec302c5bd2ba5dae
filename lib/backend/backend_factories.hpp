// The CPU backend's constructor; use make_backend(Device) (backend.hpp) rather than this. The
// CUDA backend's is in its module (cuda_module.hpp).
#pragma once

#include <memory>

#include "backend/backend.hpp"

namespace mb::backend {

std::unique_ptr<Backend> make_cpu_backend();

}  // namespace mb::backend
