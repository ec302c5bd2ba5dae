// The CPU backend: kernels/cpu/ on host memory.
#include <omp.h>
#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>

#include "backend/backend.hpp"
#include "backend/backend_factories.hpp"
#include "core/error.hpp"
#include "cpu/activation.hpp"
#include "cpu/adamw.hpp"
#include "cpu/attention.hpp"
#include "cpu/attention_bf16.hpp"
#include "cpu/attention_step.hpp"
#include "cpu/bf16.hpp"
#include "cpu/bulk_memory.hpp"
#include "cpu/crossentropy.hpp"
#include "cpu/dropout.hpp"
#include "cpu/embedding.hpp"
#include "cpu/layernorm.hpp"
#include "cpu/matmul.hpp"
#include "cpu/matmul_few_rows.hpp"
#include "cpu/residual.hpp"
#include "cpu/short_attention.hpp"

namespace mb::backend {
namespace {

#define MB_KERNELS ::mb::kernels::cpu
#include "backend/kernel_ops.inc"
#undef MB_KERNELS

class CpuBackend final : public KernelOps {
 public:
  Device device() const override { return Device::cpu; }
  std::string description() const override {
    const int threads = omp_get_max_threads();
    return "CPU (" + std::to_string(threads) + (threads == 1 ? " thread)" : " threads)");
  }
  // Buffers of 2 MiB and more start on a 2 MiB boundary and ask the kernel for transparent
  // huge pages (where it is set to `madvise`, Debian's default, nothing else gets them): a
  // generation step streams the whole global stack's weights once per patch, and with 4 KiB
  // pages every other row of a weight matrix or a KV cache is a TLB miss. The weights' product
  // alone ran 6-13% faster on huge pages (the bench shape's global stack, 50 MB, M = 1, 2
  // threads: 1.45 against 1.54-1.68 ms, three alternations). A buffer keeps its bytes either
  // way; the rounding costs less than 2 MiB of address space per buffer, not memory until
  // touched.
  static constexpr std::size_t kHugePage = std::size_t{2} << 20;
  void* allocate(std::size_t bytes) override {
    const std::size_t align = bytes >= kHugePage ? kHugePage : 256;
    const std::size_t size = (bytes + align - 1) / align * align;
    void* p = std::aligned_alloc(align, size);
    if (!p)
      throw Error("cpu", "cannot allocate " + std::to_string(bytes) + " bytes of memory",
                  "use a smaller model.context or train.batch_size");
#ifdef MADV_HUGEPAGE
    if (align == kHugePage) madvise(p, size, MADV_HUGEPAGE);  // a hint: failure changes nothing
#endif
    return p;
  }
  void release(void* p) override { std::free(p); }
  void upload(void* dst, const void* src, std::size_t bytes) override { copy(dst, src, bytes); }
  void download(void* dst, const void* src, std::size_t bytes) override { copy(dst, src, bytes); }
  void copy(void* dst, const void* src, std::size_t bytes) override {
    if (bytes && dst != src) kernels::cpu::copy_bytes(dst, src, bytes);  // no overlap (backend.hpp)
  }
  void copy_rows(void* dst, std::size_t dst_pitch, const void* src, std::size_t src_pitch,
                 std::size_t row_bytes, std::size_t rows) override {
    check_copy_rows(dst_pitch, src_pitch, row_bytes, rows);
    for (std::size_t r = 0; r < rows; ++r)
      copy(static_cast<char*>(dst) + r * dst_pitch, static_cast<const char*>(src) + r * src_pitch,
           row_bytes);
  }
  void zero(void* dst, std::size_t bytes) override {
    if (bytes) kernels::cpu::zero_bytes(dst, bytes);
  }
  bool shares_host_memory() const override { return true; }
  void synchronize() override {}
  int max_head_dim() const override { return std::numeric_limits<int>::max(); }
  std::size_t peak_device_bytes() const override { return 0; }
  std::size_t available_bytes() const override {
    // "MemAvailable:   12345 kB": what the kernel can give without swapping.
    std::ifstream meminfo("/proc/meminfo");
    std::string key;
    std::size_t kib = 0;
    while (meminfo >> key) {
      if (key == "MemAvailable:" && meminfo >> kib) return kib * 1024;
      meminfo.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
    }
    return 0;
  }
  double peak_bf16_flops() const override { return 0.0; }
  double peak_fp32_flops() const override { return 0.0; }
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

void set_cpu_threads(int threads) {
  if (threads > 0) omp_set_num_threads(threads);
}

int cpu_threads() { return omp_get_max_threads(); }

}  // namespace mb::backend
