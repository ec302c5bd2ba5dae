// Where a model runs: the kernels of one device and the memory they work on.
//
// The model code (lib/model/) is written once against this interface, op by op; the CPU
// backend forwards each op to kernels/cpu/ and the CUDA backend to its twin in kernels/cuda/
// (same name, same signature, same semantics; see kernel_ops.inc, the one forwarding list
// both include). So everything the CPU test suites prove about the model's logic (gradients,
// causality, cached generation, exact resume) is proven for the CUDA path too, and what is
// left to prove on a GPU is the kernels one by one, which `meson test --suite gpu` does.
//
// Pointers passed to the ops are device pointers: host memory for the CPU backend, CUDA
// device memory for the CUDA backend. Get them from allocate() (or an Arena committed on the
// backend); move data across with upload()/download().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "backend/op_list.inc"

namespace mb::backend {

enum class Device { cpu, cuda };

// The widest attention head the CUDA attention kernels take (kernels/cuda/attention.cuh; a
// static_assert in cuda_backend.cpp keeps the two equal). Known here so that a config can be
// checked against a device it is only planned for.
inline constexpr int kCudaMaxHeadDim = 128;
// The cuBLASLt workspace the CUDA matmul allocates once per device (kernels/cuda/matmul.cuh).
inline constexpr std::size_t kCudaMatmulWorkspaceBytes = std::size_t{32} << 20;
int max_head_dim(Device d);

// How the products of the linear layers are computed. fp32: in fp32 throughout (the CPU's
// default, and the CUDA debug mode). bf16: the operands rounded to bf16, the products
// accumulated in fp32 (the CUDA default: tensor cores); the CPU computes exactly that too
// (slower), as the twin the CUDA results are checked against. bf16 also selects the bf16
// attention where it takes the heads (attention_kernel below). Parameters (the master
// weights), gradients and every other op stay fp32 either way; in bf16 a model also keeps a
// bf16 copy of its weights, and saves four activations per layer as bf16 only, as autocast
// keeps them (TransformerStack::reserve).
enum class Precision { fp32, bf16 };

std::string_view device_name(Device d);
std::string_view precision_name(Precision p);
// "fp32" or "bf16"; anything else is an mb::Error naming `what`.
Precision parse_precision(const std::string& text, const std::string& what);
// bf16 on CUDA, fp32 on the CPU.
Precision default_precision(Device d);
// "cpu" or "cuda"; anything else is an mb::Error naming `what` (e.g. "--device").
Device parse_device(const std::string& text, const std::string& what);

// The ops of op_list.inc, one enumerator each in the list's order, and their count: what a
// test table (tests/backend_ops/) names its rows by, and checks it covers.
enum class Op {
#define MB_OP_ENUMERATOR(ret, name, params, args) name,
  MB_ALL_OPS(MB_OP_ENUMERATOR)
#undef MB_OP_ENUMERATOR
};
#define MB_OP_COUNT_ONE(ret, name, params, args) +1
inline constexpr int kOpCount = 0 MB_ALL_OPS(MB_OP_COUNT_ONE);
#undef MB_OP_COUNT_ONE
// The op's name as op_list.inc spells it ("matmul_forward").
std::string_view op_name(Op op);

// Whether this build has the CUDA backend and a CUDA device can be used; when not, `why` says
// which of the two is missing.
bool cuda_available(std::string* why = nullptr);

// Throws the mb::Error make_backend(device) would throw when `device` cannot be used.
void require_device(Device device);

// The GPU later CUDA backends of this process use: device `index` of those the CUDA runtime
// sees (one per rank of a machine, under mpirun or srun); device 0 without a call. Throws
// mb::Error, naming `who`, where the machine has no GPU of that index. Nothing where this
// build has no CUDA backend.
void select_cuda_device(int index, const std::string& who);

// cuda when cuda_available(), else cpu: what a command runs on without --device.
Device default_device();

// Backend::copy_rows's argument rule, checked by both backends alike: with more than one row,
// each pitch must be at least row_bytes (rows may not overlap); std::invalid_argument
// otherwise.
void check_copy_rows(std::size_t dst_pitch, std::size_t src_pitch, std::size_t row_bytes,
                     std::size_t rows);

// An operand of an op, as its holder keeps it: fp32 values, bf16 patterns (bf16.hpp), or both
// (the patterns then being the values rounded). The one rule every op follows: an op that
// computes in bf16 reads the patterns where given and rounds the values otherwise (the same
// result); an op that computes in fp32 reads the values where given and the patterns, widened
// exactly, otherwise. (The fp32 matrix products take values only: patterns alone are kept for
// bf16 products, and an fp32 product refuses them with std::invalid_argument.) A model keeps
// patterns of its weights in bf16 precision (ParameterView::weight) and saves some activations
// as patterns only (TransformerStack), so the products read them without rounding again.
struct Operand {
  const float* fp32 = nullptr;
  const std::uint16_t* bf16 = nullptr;
  Operand() = default;
  Operand(const float* values) : fp32(values) {}  // NOLINT: an fp32 buffer is an operand
  Operand(const float* values, const std::uint16_t* patterns) : fp32(values), bf16(patterns) {}
  static Operand patterns(const std::uint16_t* p) { return Operand(nullptr, p); }
};

// What a model keeps as bf16 in a precision, the rules of bf16 in one place. In bf16 a model
// keeps a bf16 copy of its weights, which the products read and AdamW rewrites from the fp32
// master weights; and it saves the activations its backward pass reads as bf16 operands as
// bf16 patterns only, as PyTorch's autocast keeps them (TransformerStack::reserve says which).
inline bool keeps_bf16_weights(Precision p) { return p == Precision::bf16; }
inline bool saves_bf16_activations(Precision p) { return p == Precision::bf16; }

// The kernels a backend may run for causal attention (Backend::attention_kernel), all computing
// the same function: the tiled one (kernels/cpu/attention.hpp), the same reading q, k, v as bf16
// with its products on tensor cores on CUDA (attention_bf16.hpp), and the one made for short
// sequences (short_attention.hpp: on CUDA the whole sequence in shared memory, one launch per
// pass).
enum class AttentionKernel { tiled, tiled_bf16, short_sequence };
std::string_view attention_kernel_name(AttentionKernel k);

struct CrossEntropyResult {
  double loss = 0.0;       // sum of -ln p(target) over the counted rows
  std::int64_t count = 0;  // rows with a target >= 0
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  Precision precision() const { return precision_; }
  void set_precision(Precision p) { precision_ = p; }
  // One line for logs and `megabyte bench`: "CPU (2 threads)", "NVIDIA H100 80GB HBM3 (sm_90)".
  virtual std::string description() const = 0;

  // --- memory -------------------------------------------------------------------------
  // `bytes` of device memory, 256-byte aligned; throws mb::Error when the device is full
  // (naming how much was asked for and what is free).
  virtual void* allocate(std::size_t bytes) = 0;
  virtual void release(void* p) = 0;
  virtual void upload(void* device_dst, const void* host_src, std::size_t bytes) = 0;
  virtual void download(void* host_dst, const void* device_src, std::size_t bytes) = 0;
  // Ranges must not overlap unless equal (a copy onto itself does nothing): the CUDA backend's
  // device-to-device copy is not a memmove. The CPU backend does not rely on that, to stay
  // its twin's reference (and checks nothing either).
  virtual void copy(void* device_dst, const void* device_src, std::size_t bytes) = 0;
  virtual void zero(void* device_dst, std::size_t bytes) = 0;
  // rows rows of row_bytes each, from src (rows src_pitch bytes apart) to dst (dst_pitch
  // apart); the rows must not overlap (as copy). Pitches below row_bytes are refused
  // (check_copy_rows).
  virtual void copy_rows(void* device_dst, std::size_t dst_pitch, const void* device_src,
                         std::size_t src_pitch, std::size_t row_bytes, std::size_t rows) = 0;
  // Whether device pointers are host pointers (the CPU backend): then a model's parameters
  // need no device copy.
  virtual bool shares_host_memory() const = 0;
  // Waits for all queued work (timings; a no-op on the CPU).
  virtual void synchronize() = 0;
  // The largest attention head dimension the attention kernels take.
  virtual int max_head_dim() const = 0;
  // Peak bytes of device memory this process has held through the backend and the kernels'
  // temporaries (CUDA: allocate() plus the stream-ordered pool the kernels draw from); 0 on
  // the CPU, where `megabyte bench` reports the process's peak resident memory instead.
  virtual std::size_t peak_device_bytes() const = 0;
  // Bytes of device memory free for a new run now (CUDA: the device's free memory; the CPU:
  // the kernel's MemAvailable), or 0 where unknown. A training run that plans for more is
  // refused before it allocates (train::check_training_fits).
  virtual std::size_t available_bytes() const = 0;
  // The device's peak dense matrix rates in FLOP/s, for MFU: bf16 with fp32 accumulation on
  // tensor cores, and plain fp32 (no TF32). 0 where the device is not in the table
  // (device_peaks.cpp; megabyte-bench(1) prints it).
  virtual double peak_bf16_flops() const = 0;
  virtual double peak_fp32_flops() const = 0;

  // --- ops ----------------------------------------------------------------------------
  // The op list is op_list.inc, written once; these are its virtuals. The forwarded ops are
  // documented where their kernels are (kernels/cpu/X.hpp; kernels/cuda/X.cuh are the twins),
  // the chosen ones here:
  //
  // matmul_forward / matmul_backward: the linear layers' products (kernels/cpu/matmul.hpp) in
  //   the backend's precision, operands read by the Operand rule (above). The backward pass
  //   writes dinp (an input's gradient, as a framework's autograd: the buffer's old contents
  //   are not read, so no pass zeroes it first and the product reads nothing back) and
  //   accumulates dweight and dbias (a parameter's gradient, summed over calls); each may be
  //   null.
  // matmul_bias_relu_forward: out = max(matmul_forward's product + bias, 0), the bits of
  //   matmul_forward without its bias followed by bias_relu_forward, in one pass where the
  //   kernel allows (oneDNN's ReLU post-op on the CPU): for a forward pass that keeps no
  //   pre-activation (inference).
  // matmul_residual_forward: out += matmul_forward's product (with the bias), the bits of
  //   matmul_forward into a buffer followed by residual_forward(out, out, buffer), in one pass
  //   where the kernel allows (oneDNN's sum post-op on the CPU): for a residual branch added in
  //   place (inference).
  // matmul_step_forward: matmul_forward's product for the few rows of a generation step (one
  //   per sequence), where reading the weights is the cost: on the CPU in fp32, for one or two
  //   rows, a kernel that streams them once (kernels/cpu/matmul_few_rows.hpp), and
  //   matmul_forward's GEMM for more. A row's bits may differ from matmul_forward's, so a model
  //   uses one of the two for each computation: matmul_forward for whole windows (whose rows
  //   must not depend on how the windows are batched or chunked), this one for cached steps (a
  //   sequence generated alone or beside one other gets the same bits; beside more, the same
  //   to rounding).
  // head_logits: logits[N, V] = h[N, D] · E[0:V, D]ᵀ in fp32 whatever the precision: the logits
  //   the cross-entropy ops compute inside (kernels' crossentropy_*), so that sampling draws
  //   from the very distribution the loss scores, and evaluation reports.
  // to_bf16: dst[i] = the bf16 pattern of src[i] for i < n (from_bf16 is its exact inverse on
  //   patterns).
  // bias_relu_backward / bias_gelu_backward: the activation's backward pass at the saved
  //   pre-activation `inp`, read by the Operand rule: an operand of bf16 patterns only (a model
  //   that saved it as bf16) gives the gradient at the rounded pre-activation, as autocast.
  //   Like matmul_backward, writes dinp (not read) and accumulates dbias.
  // causal_attention_forward / causal_attention_backward: causal self-attention over B
  //   sequences of T positions, qkv [B, T, 3, H, d] (kernels/cpu/attention.hpp). The backend
  //   picks the kernel (attention_kernel below) by shape, precision and device; every kernel
  //   computes this function, so the choice is one of speed, and the same shape always gets the
  //   same kernel, so a step's backward pass matches its forward. The backward writes dqkv
  //   (not read), as matmul_backward writes dinp.
  // attention_step: one position's attention over B sequences' KV caches
  //   (kernels/cpu/attention_step.hpp); k and v are fp32 caches or caches of bf16 patterns (both
  //   the same kind), read at their exact values.
  // crossentropy_forward / crossentropy_backward: the tied head and the loss, fused and chunked
  //   (kernels/cpu/crossentropy.hpp).
#define MB_DECLARE_OP(ret, name, params, args) virtual ret name params = 0;
  MB_ALL_OPS(MB_DECLARE_OP)
#undef MB_DECLARE_OP

  // Which kernel causal_attention_* runs for sequences of T positions with heads of d, in this
  // backend's precision on this device (for tests, logs and `megabyte bench`).
  virtual AttentionKernel attention_kernel(int T, int d) const = 0;

 protected:
  Precision precision_ = Precision::fp32;
};

// The backend of `device`, its matrix products in `precision`; an mb::Error saying why when it
// cannot be used (a build without CUDA, no device found).
std::unique_ptr<Backend> make_backend(Device device, Precision precision);
// The same in the device's default precision.
std::unique_ptr<Backend> make_backend(Device device);

// A block of device memory that releases itself.
class DeviceMemory {
 public:
  DeviceMemory() = default;
  DeviceMemory(Backend& backend, std::size_t bytes)
      : backend_(&backend), ptr_(bytes ? backend.allocate(bytes) : nullptr), bytes_(bytes) {}
  ~DeviceMemory() { reset(); }
  DeviceMemory(DeviceMemory&& o) noexcept { *this = std::move(o); }
  DeviceMemory& operator=(DeviceMemory&& o) noexcept {
    if (this != &o) {
      reset();
      backend_ = o.backend_;
      ptr_ = o.ptr_;
      bytes_ = o.bytes_;
      o.ptr_ = nullptr;
      o.bytes_ = 0;
    }
    return *this;
  }
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;

  void* get() const { return ptr_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  std::size_t bytes() const { return bytes_; }

 private:
  void reset() {
    if (ptr_) backend_->release(ptr_);
    ptr_ = nullptr;
  }
  Backend* backend_ = nullptr;
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

// The CPU backend's threads (OpenMP's, for the whole process): set_cpu_threads(n) runs the CPU
// ops on n threads from then on, and n <= 0 leaves them as they are (by default
// OMP_NUM_THREADS, else one per core); cpu_threads() is how many they run on now.
void set_cpu_threads(int threads);
int cpu_threads();

}  // namespace mb::backend
