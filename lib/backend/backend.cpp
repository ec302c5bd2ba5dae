#include "backend/backend.hpp"

#include <limits>
#include <stdexcept>
#include <string>

#include "backend/backend_factories.hpp"
#include "backend/cuda_module.hpp"
#include "core/error.hpp"

namespace mb::backend {

std::string_view device_name(Device d) { return d == Device::cpu ? "cpu" : "cuda"; }

Device parse_device(const std::string& text, const std::string& what) {
  if (text == "cpu") return Device::cpu;
  if (text == "cuda") return Device::cuda;
  throw Error(what, "unknown device '" + text + "'", "use cpu or cuda");
}

std::string_view precision_name(Precision p) { return p == Precision::fp32 ? "fp32" : "bf16"; }

std::string_view op_name(Op op) {
  switch (op) {
#define MB_OP_NAME(ret, name, params, args) \
  case Op::name: return #name;
    MB_ALL_OPS(MB_OP_NAME)
#undef MB_OP_NAME
  }
  return "?";
}

std::string_view attention_kernel_name(AttentionKernel k) {
  switch (k) {
    case AttentionKernel::tiled: return "tiled";
    case AttentionKernel::tiled_bf16: return "tiled bf16";
    case AttentionKernel::short_sequence: return "short";
  }
  return "?";
}

Precision parse_precision(const std::string& text, const std::string& what) {
  if (text == "fp32") return Precision::fp32;
  if (text == "bf16") return Precision::bf16;
  throw Error(what, "unknown precision '" + text + "'", "use fp32 or bf16");
}

Precision default_precision(Device d) {
  return d == Device::cuda ? Precision::bf16 : Precision::fp32;
}

int max_head_dim(Device d) { return d == Device::cuda ? kCudaMaxHeadDim : 1 << 30; }

bool cuda_available(std::string* why) {
  const CudaModule* cuda = cuda_module(why);
  return cuda && cuda->device_count(why) > 0;
}

void select_cuda_device(int index, const std::string& who) {
  std::string why;
  const CudaModule* cuda = cuda_module(&why);
  if (!cuda) return;  // no GPU to select: the backend's own checks say why
  const int count = cuda->device_count(&why);
  if (index >= count)
    throw Error(who, "would take GPU " + std::to_string(index) + " but this machine has " +
                         std::to_string(count) + (count == 0 ? " (" + why + ")" : ""),
                "start at most one process per GPU on each machine (mpirun -np, srun "
                "--ntasks-per-node), or train on --device cpu");
  cuda->set_device(index);
}

// Where no NVIDIA driver is installed, the CPU, without opening the CUDA module; an explicit
// --device cuda opens it, for the runtime's own reason.
Device default_device() {
  return cuda_driver_present() && cuda_available() ? Device::cuda : Device::cpu;
}

void require_device(Device device) {
  std::string why;
  if (device != Device::cuda || cuda_available(&why)) return;
#ifdef MEGABYTE_HAVE_CUDA
  if (!cuda_module(nullptr))  // built with CUDA, but its module is missing or broken
    throw Error("--device cuda", why,
                "install megabyte again (meson install puts megabyte-cuda.so in " MEGABYTE_MODULE_DIR
                "), or use --device cpu");
#endif
  throw Error("--device cuda", why, "use --device cpu");
}

std::unique_ptr<Backend> make_backend(Device device, Precision precision) {
  std::unique_ptr<Backend> b;
  if (device == Device::cpu) {
    b = make_cpu_backend();
  } else {
    require_device(device);
    b = cuda_module(nullptr)->make_backend();
  }
  b->set_precision(precision);
  return b;
}

std::unique_ptr<Backend> make_backend(Device device) {
  return make_backend(device, default_precision(device));
}

void check_copy_rows(std::size_t dst_pitch, std::size_t src_pitch, std::size_t row_bytes,
                     std::size_t rows) {
  if (rows > 1 && (dst_pitch < row_bytes || src_pitch < row_bytes))
    throw std::invalid_argument("copy_rows: rows of " + std::to_string(row_bytes) +
                                " bytes need pitches of at least that, got dst " +
                                std::to_string(dst_pitch) + " and src " +
                                std::to_string(src_pitch));
}

}  // namespace mb::backend
