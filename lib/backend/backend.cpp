#include "backend/backend.hpp"

#include <limits>
#include <stdexcept>

#include "backend/backend_factories.hpp"
#include "core/error.hpp"

namespace mb::backend {

std::string_view device_name(Device d) { return d == Device::cpu ? "cpu" : "cuda"; }

Device parse_device(const std::string& text, const std::string& what) {
  if (text == "cpu") return Device::cpu;
  if (text == "cuda") return Device::cuda;
  throw Error(what, "unknown device '" + text + "'", "use cpu or cuda");
}

int max_head_dim(Device d) { return d == Device::cuda ? kCudaMaxHeadDim : 1 << 30; }

bool cuda_available(std::string* why) {
#ifdef MEGABYTE_HAVE_CUDA
  return cuda_device_count(why) > 0;
#else
  if (why) *why = "this megabyte was built without the CUDA backend (nvcc was not found when it was built)";
  return false;
#endif
}

Device default_device() { return cuda_available() ? Device::cuda : Device::cpu; }

void require_device(Device device) {
  std::string why;
  if (device == Device::cuda && !cuda_available(&why))
    throw Error("--device cuda", why, "use --device cpu");
}

std::unique_ptr<Backend> make_backend(Device device) {
  if (device == Device::cpu) return make_cpu_backend();
  require_device(device);
#ifdef MEGABYTE_HAVE_CUDA
  return make_cuda_backend();
#else
  throw std::logic_error("make_backend: cuda_available() without the CUDA backend");
#endif
}

}  // namespace mb::backend
