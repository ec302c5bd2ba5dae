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
// attention where it takes the heads (attention_forward below). Parameters (the master
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

// Whether this build has the CUDA backend and a CUDA device can be used; when not, `why` says
// which of the two is missing.
bool cuda_available(std::string* why = nullptr);

// Throws the mb::Error make_backend(device) would throw when `device` cannot be used.
void require_device(Device device);

// cuda when cuda_available(), else cpu: what a command runs on without --device.
Device default_device();

// Backend::copy_rows's argument rule, checked by both backends alike: with more than one row,
// each pitch must be at least row_bytes (rows may not overlap); std::invalid_argument
// otherwise.
void check_copy_rows(std::size_t dst_pitch, std::size_t src_pitch, std::size_t row_bytes,
                     std::size_t rows);

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
  // The device's peak dense matrix rates in FLOP/s, for MFU: bf16 with fp32 accumulation on
  // tensor cores, and plain fp32 (no TF32). 0 where the device is not in the table
  // (device_peaks.cpp; megabyte-bench(1) prints it).
  virtual double peak_bf16_flops() const = 0;
  virtual double peak_fp32_flops() const = 0;

  // --- ops: kernels/cpu/*.hpp documents each; kernels/cuda/*.cuh are the twins ----------
  virtual void embedding_forward(float* out, const std::int32_t* ids, const float* table, int N,
                                 int C, int V) = 0;
  virtual void embedding_backward(float* dtable, const float* dout, const std::int32_t* ids,
                                  int N, int C, int V) = 0;
  virtual void layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                                 const float* weight, const float* bias, int N, int C,
                                 float eps) = 0;
  virtual void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                                  const float* inp, const float* weight, const float* mean,
                                  const float* rstd, int N, int C) = 0;
  // The matrix products of the current precision. inp_bf16 and weight_bf16 are bf16 copies of
  // inp and weight where the caller keeps them (in bf16 precision, Model keeps its weights'
  // copy, which AdamW writes, and TransformerStack saves some activations in bf16 only); the
  // bf16 products read a copy instead of rounding the fp32 operand, with the same result, and
  // the fp32 products ignore the copies. A copy may be null; an fp32 operand may be null where
  // its copy is given, in bf16 precision only.
  virtual void matmul_forward(float* out, const float* inp, const std::uint16_t* inp_bf16,
                              const float* weight, const std::uint16_t* weight_bf16,
                              const float* bias, int M, int K, int N) = 0;
  virtual void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                               const float* inp, const std::uint16_t* inp_bf16,
                               const float* weight, const std::uint16_t* weight_bf16, int M,
                               int K, int N) = 0;
  // logits[N, V] = h[N, D] · E[0:V, D]ᵀ in fp32 whatever the precision: the logits the
  // cross-entropy ops compute inside (kernels' crossentropy_*), so that sampling draws from the
  // very distribution the loss scores, and evaluation reports.
  virtual void head_logits(float* logits, const float* h, const float* E, int N, int D, int V) = 0;
  // dst[i] = the bf16 pattern of src[i] for i < n (kernels' to_bf16 with one row).
  virtual void to_bf16(std::uint16_t* dst, const float* src, std::size_t n) = 0;
  // dst[i] = the fp32 value of the bf16 pattern src[i] for i < n (exact).
  virtual void from_bf16(float* dst, const std::uint16_t* src, std::size_t n) = 0;
  // The causal attention (cpu/attention.hpp). In bf16 precision, for heads that
  // attention_bf16_supports, the bf16 attention (cpu/attention_bf16.hpp): q, k, v read as bf16,
  // and on CUDA the products inside on tensor cores.
  virtual void attention_forward(float* out, float* lse, const float* qkv, int B, int T, int H,
                                 int d) = 0;
  // Whether the bf16 attention takes heads of d (the kernels' attention_bf16_supports).
  virtual bool attention_bf16_supports(int d) const = 0;
  virtual void attention_backward(float* dqkv, const float* dout, const float* out,
                                  const float* lse, const float* qkv, int B, int T, int H,
                                  int d) = 0;
  // The same attention for short sequences (cpu/short_attention.hpp), for the shapes this
  // backend's short_attention_fits accepts: on the CPU and on A100/H100 the same ones, on GPUs
  // with less shared memory per block fewer.
  virtual bool short_attention_fits(int T, int d) = 0;
  virtual void short_attention_forward(float* out, float* lse, const float* qkv, int B, int T,
                                       int H, int d) = 0;
  virtual void short_attention_backward(float* dqkv, const float* dout, const float* out,
                                        const float* lse, const float* qkv, int B, int T, int H,
                                        int d) = 0;
  // One position's attention over B sequences' KV caches (cpu/attention_step.hpp).
  virtual void attention_step(float* out, float* scores, const float* q, const float* k,
                              const float* v, int B, int n, int H, int d, std::size_t q_stride,
                              std::size_t stride, std::size_t batch_stride) = 0;
  // The same over caches of bf16 patterns, read at their exact values (bf16 models' caches).
  virtual void attention_step_bf16(float* out, float* scores, const float* q,
                                   const std::uint16_t* k, const std::uint16_t* v, int B, int n,
                                   int H, int d, std::size_t q_stride, std::size_t stride,
                                   std::size_t batch_stride) = 0;
  // rows rows of row_bytes each, from src (rows src_pitch bytes apart) to dst (dst_pitch
  // apart); the rows must not overlap (as copy). Pitches below row_bytes are refused
  // (check_copy_rows).
  virtual void copy_rows(void* device_dst, std::size_t dst_pitch, const void* device_src,
                         std::size_t src_pitch, std::size_t row_bytes, std::size_t rows) = 0;
  // The activations' backward passes read the saved pre-activation as fp32 (inp) or, where
  // the caller keeps only that (bf16 precision), as its bf16 copy inp_bf16, which is then read
  // instead: the gradient at the rounded pre-activation, as under autocast.
  virtual void bias_relu_forward(float* out, const float* inp, const float* bias, int N, int C) = 0;
  virtual void bias_relu_backward(float* dinp, float* dbias, const float* dout, const float* inp,
                                  const std::uint16_t* inp_bf16, const float* bias, int N,
                                  int C) = 0;
  virtual void bias_gelu_forward(float* out, const float* inp, const float* bias, int N, int C) = 0;
  virtual void bias_gelu_backward(float* dinp, float* dbias, const float* dout, const float* inp,
                                  const std::uint16_t* inp_bf16, const float* bias, int N,
                                  int C) = 0;
  virtual void residual_forward(float* out, const float* a, const float* b, std::size_t n) = 0;
  virtual void residual_backward(float* da, float* db, const float* dout, std::size_t n) = 0;
  virtual void dropout_forward(float* out, const float* inp, std::size_t n, float p,
                               std::uint64_t seed, std::uint64_t offset) = 0;
  virtual void dropout_backward(float* dinp, const float* dout, std::size_t n, float p,
                                std::uint64_t seed, std::uint64_t offset) = 0;
  virtual CrossEntropyResult crossentropy_forward(float* losses, const float* h, const float* E,
                                                  const std::int32_t* targets, int N, int D,
                                                  int V) = 0;
  virtual CrossEntropyResult crossentropy_backward(float* dh, float* dE, const float* h,
                                                   const float* E, const std::int32_t* targets,
                                                   float dloss, int N, int D, int V) = 0;
  virtual void adamw_step(float* params, std::uint16_t* params_bf16, const float* grads,
                          float* m, float* v, std::size_t n, long t, float lr, float beta1,
                          float beta2, float eps, float weight_decay) = 0;
  virtual double grad_norm_squared(const float* g, std::size_t n) = 0;
  virtual float clip_grad_norm(float* g, std::size_t n, float max_norm) = 0;

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
  template <class T> T* as() const { return static_cast<T*>(ptr_); }
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

}  // namespace mb::backend
