#include "backend/cuda_module.hpp"

#include <dlfcn.h>

#include <filesystem>
#include <mutex>
#include <system_error>
#include <vector>

// Defined only where the module's code is linked into the executable; otherwise null.
extern "C" const mb::backend::CudaModule* megabyte_cuda_module() __attribute__((weak));

namespace mb::backend {

namespace {

constexpr const char* kModuleFile = "megabyte-cuda.so";

struct Loaded {
  const CudaModule* module = nullptr;
  std::string why;
};

Loaded load() {
  Loaded r;
#ifndef MEGABYTE_HAVE_CUDA
  r.why = "this megabyte was built without the CUDA backend (nvcc was not found when it was built)";
  return r;
#else
  if (megabyte_cuda_module) {
    r.module = megabyte_cuda_module();
    return r;
  }
  std::vector<std::filesystem::path> candidates;
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back(exe.parent_path() / kModuleFile);
  candidates.push_back(std::filesystem::path(MEGABYTE_MODULE_DIR) / kModuleFile);
  std::string tried;
  for (const auto& path : candidates) {
    if (!std::filesystem::exists(path, ec)) {
      tried += (tried.empty() ? "" : ", ") + path.string();
      continue;
    }
    // RTLD_NOW: a module that does not fit this executable fails here, with the missing
    // symbol named, rather than at its first call.
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      r.why = std::string("the CUDA backend module does not load: ") + dlerror();
      return r;
    }
    using Entry = const CudaModule* (*)();
    auto entry = reinterpret_cast<Entry>(dlsym(handle, "megabyte_cuda_module"));
    if (!entry) {
      r.why = path.string() + " is not megabyte's CUDA module (no megabyte_cuda_module)";
      return r;
    }
    r.module = entry();
    return r;
  }
  r.why = "the CUDA backend module is not installed (looked for " + tried + ")";
  return r;
#endif
}

}  // namespace

bool cuda_driver_present() {
#ifdef MEGABYTE_HAVE_CUDA
  // Left open: the CUDA runtime opens the same library when a GPU is used.
  static const bool present = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL) != nullptr;
  return present;
#else
  return false;
#endif
}

const CudaModule* cuda_module(std::string* why) {
  static std::once_flag once;
  static Loaded loaded;
  std::call_once(once, [] { loaded = load(); });
  if (!loaded.module && why) *why = loaded.why;
  return loaded.module;
}

}  // namespace mb::backend
