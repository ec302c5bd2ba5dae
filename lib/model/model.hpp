// A byte model: MEGABYTE (megabyte.cpp) or the byte-level transformer baseline
// (byte_transformer.cpp), behind one interface that training, evaluation and the tests use.
//
// A batch is B windows of T byte ids each ([B, T] int32): ids 0..255 are bytes (0 is an ordinary
// byte) and kPadId marks positions past the end of a short document. The model predicts every
// byte from the bytes before it in its window; padded positions carry no loss.
//
// A model runs on a backend (lib/backend/): the CPU, or a CUDA device. Its parameters live in
// a host ParameterSet (what checkpoints read and write, what initialize() fills); on a device
// whose memory is not host memory the kernels use a device copy, which upload_parameters() and
// download_parameters() keep in step. Every other buffer a model needs comes from one arena,
// reserved in full when the model is made.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "backend/arena.hpp"
#include "backend/backend.hpp"
#include "model/config.hpp"
#include "model/parameters.hpp"

namespace mb::model {

inline constexpr int kByteValues = 256;  // output classes
inline constexpr int kPadId = 256;       // the one pad id; embedding tables have 257 rows
inline constexpr int kEmbeddingRows = 257;

struct LossSum {
  double loss = 0.0;       // sum over the scored bytes of -ln p(byte)
  std::int64_t count = 0;  // scored bytes
};

// How a model keeps what its backward pass reads (train.recompute, megabyte-config(5)): per
// stack, everything, or each layer's input only, the rest recomputed in the backward pass with
// the same kernels (TransformerStack::reserve): the same gradients, bit for bit, in less memory.
struct ActivationPolicy {
  bool recompute_global = false;  // the global stack (the byte transformer's one stack)
  bool recompute_local = false;   // MEGABYTE's local stack
  // MEGABYTE: the local model runs this many patches at a time (0: all), so its activations
  // are O(chunk), not O(T) (train.local_chunk).
  int local_chunk = 0;
  // A model that only ever runs forward passes that are not training (`megabyte eval`): the
  // buffers of the inference pass alone (TransformerStack::infer), no gradients; a training
  // forward() and backward() refuse to run.
  bool inference_only = false;
  bool operator==(const ActivationPolicy&) const = default;
};

// The policy of a config's train.recompute for its kind of model.
ActivationPolicy activation_policy(const ModelConfig& model, Recompute recompute);
// The same with train.local_chunk.
ActivationPolicy activation_policy(const ModelConfig& model, const TrainConfig& train);
// The same for a model that only evaluates (`megabyte eval`) on `device`: inference_only, and
// on the CPU MEGABYTE's local model runs at most kCpuInferenceLocalRows rows (whole patches) at
// a time, so that a chunk's activations stay in the caches from one op to the next (chunks
// give the same bits). Measured at the bench shape, eval at batch 8: 2% faster with chunks of
// 512 or 2,048 rows than with all 16,384 at once. A GPU keeps the run's setting: its products
// want the rows.
inline constexpr int kCpuInferenceLocalRows = 2048;
ActivationPolicy inference_policy(const ModelConfig& model, const TrainConfig& train,
                                  backend::Device device);

// What a model holds on its device, in bytes (`megabyte bench --memory`).
struct ModelMemory {
  std::size_t parameters = 0;    // fp32 values (a device copy; on the CPU the host buffer)
  std::size_t gradients = 0;     // fp32, same layout
  std::size_t bf16_weights = 0;  // the bf16 copy of the parameters (bf16 precision only)
  std::size_t activations = 0;   // what forward() keeps for backward(), scratch, ids, losses
};

// A model's equations run one new position at a time for `batch` sequences side by side, with
// KV caches (each stack's TransformerStack::Cache): what Generator (generator.hpp) drives. Each
// kind defines its decoder beside its full forward, from the same equations and the same stacks,
// so the two compute the same function (to the attention's rounding: another kernel).
class CachedDecoder {
 public:
  virtual ~CachedDecoder() = default;
  // Forgets every position run: the next is the first of a window.
  virtual void reset() = 0;
  // The logits [batch, 256] (device memory, valid until the next call) of position n of every
  // sequence, given the bytes before it (bytes[b][0..n), n < T). After a reset, positions come
  // in increasing order; the decoder runs whatever steps lie between.
  virtual const float* logits(const std::vector<std::vector<std::uint8_t>>& bytes, int n) = 0;
  // Device memory held: mostly the KV caches.
  virtual std::size_t device_bytes() const = 0;
};

class Model {
 public:
  virtual ~Model() = default;

  const ModelConfig& config() const { return config_; }
  ParameterSet& parameters() { return params_; }
  const ParameterSet& parameters() const { return params_; }
  int max_batch() const { return max_batch_; }

  // The backend the model runs on; null for a model that only describes itself (see
  // make_model_plan()).
  backend::Backend* backend() const { return backend_.get(); }
  // The parameters and gradients as the kernels see them.
  const ParameterView& view() const { return view_; }

  // Copies parameters().values() to the device copy: after initialize() or load_weights(), or
  // after any change to the host values. Does nothing more where the device uses host memory,
  // except in bf16 precision: there it also (re)makes the bf16 copy of the parameters that the
  // matrix products read (view().values_bf16) and AdamW keeps in step. Until the first call
  // the products round the fp32 values themselves, which gives the same results, so a model
  // that is never uploaded still computes right; one whose host values change after the call
  // without another call runs on the old values on every device.
  void upload_parameters();
  // Copies the device copy back to parameters().values(): before writing a checkpoint.
  void download_parameters();
  // Copies the device gradients to parameters().grads() (for tests).
  void download_gradients();
  void zero_gradients();

  // Runs a batch of `batch` <= max_batch() windows (copied: `ids` need not outlive the call),
  // keeping what backward() needs when `training`; otherwise nothing is kept (the stacks'
  // inference pass, TransformerStack::infer: the same bits) and backward() refuses to follow.
  // Returns the summed loss, except when `training`: then only the count is filled in, since
  // backward() computes the loss anyway (the tied output head is recomputed there chunk by
  // chunk) and returns it. Dropout is applied when `training`, its
  // masks a function of `dropout_seed`; the windows are windows first_window.. of a larger
  // micro-batch run a part at a time (by the ranks of a job that share it), and draw the masks
  // the whole micro-batch would draw at those windows.
  virtual LossSum forward(const std::int32_t* ids, int batch, bool training,
                          std::uint64_t dropout_seed, int first_window = 0) = 0;

  // Accumulates into the gradients (view().grads) the gradient of dloss · (the summed loss of
  // the last forward()), and returns that forward's summed loss. For the mean loss of a step,
  // dloss = 1 / (bytes scored in the step).
  virtual LossSum backward(float dloss) = 0;

  // logits[batch, T, 256] of every position (no dropout), into host memory; for evaluation
  // and tests.
  virtual void logits(float* out, const std::int32_t* ids, int batch) = 0;

  // The loss of every position of the last forward() that was not `training`: [batch, T]
  // values of -ln p(byte), 0 at pads, in host memory. Evaluation scores chosen positions with it.
  const float* position_losses() const { return losses_.data(); }

  // A decoder of `batch` sequences for cached generation, its caches on the model's device; the
  // model (its parameters allocated and uploaded) must outlive it and not change meanwhile.
  virtual std::unique_ptr<CachedDecoder> make_decoder(int batch) const = 0;

  // Whether the stacks save some activations as bf16 copies only (TransformerStack::reserve),
  // by the backend's rule (backend::saves_bf16_activations). Their attention then reads q, k
  // and v rounded to bf16, and so do their cached steps.
  bool bf16_activations() const { return backend::saves_bf16_activations(precision_); }

  ModelMemory memory() const;
  // Floats of activation memory the model holds (for `megabyte bench`).
  std::size_t activation_floats() const { return activation_bytes_ / sizeof(float); }

 protected:
  // `device` and `precision` are the backend's, or for a plan (backend null) the ones planned
  // for.
  Model(const ModelConfig& config, int max_batch, std::shared_ptr<backend::Backend> backend,
        backend::Device device, backend::Precision precision, bool inference_only)
      : config_(config),
        max_batch_(max_batch),
        backend_(std::move(backend)),
        device_(device),
        precision_(backend_ ? backend_->precision() : precision),
        inference_only_(inference_only) {}

  // For the subclasses' constructors, in this order: register parameters (params_.add), then
  // reserve activation buffers in arena_, then call this. It reserves the device copies of the
  // parameters and (unless inference_only_) gradients where needed, and their bf16 copy in
  // bf16 precision, and, with a backend, allocates the arena and the host parameters.
  void commit_memory();
  // An mb::Error naming `key` when heads of width / heads are too wide for the backend's
  // attention kernels.
  void check_head_dim(int width, int heads, const char* key) const;
  // Sends the host ids of a batch to the device buffer `device_ids`.
  void upload_ids(const backend::Slice<std::int32_t>& device_ids, const std::int32_t* host,
                  std::size_t n);
  // Computes the per-position losses of a forward that is not training into losses_ (host),
  // from the device buffer.
  void fetch_losses(const backend::Slice<float>& device_losses, std::size_t n);
  // out[rows, 256] (host) = h[rows, D] · E[0:256]ᵀ on the device.
  void tied_logits(float* out, const float* h, const float* E, int rows, int D);
  // For make_decoder(): throws std::logic_error unless the parameters are on the device.
  void check_decodable(int batch) const;

  ModelConfig config_;
  ParameterSet params_;
  int max_batch_;
  std::shared_ptr<backend::Backend> backend_;
  backend::Device device_;
  backend::Precision precision_;
  bool inference_only_;  // ActivationPolicy::inference_only
  // forward() with `training` on a model reserved for inference only: throws std::logic_error.
  void check_trainable(bool training) const;
  backend::Arena arena_;
  ParameterView view_;
  std::vector<float> losses_;  // [max_batch, T] host, written by forward() when not training

 private:
  backend::Slice<float> device_values_, device_grads_;  // where the device is not the host
  backend::Slice<std::uint16_t> bf16_values_;           // in bf16 precision
  std::size_t activation_bytes_ = 0;
};

// A model of config.kind on `backend`, with buffers for up to `max_batch` windows, its
// parameters zero. Call parameters().initialize() then upload_parameters() for a fresh model.
// With max_batch = 0 it holds its weights only (their device and bf16 copies, no gradients,
// no activations): what a Generator reads, so `megabyte sample` does not reserve a training
// window's buffers on the device; forward(), backward() and logits() refuse to run it.
// With max_batch = 0 and no backend (the second form) nothing is allocated at all: the model
// only describes its parameters (names, shapes, counts), as `megabyte info` needs for a
// checkpoint of any size.
std::unique_ptr<Model> make_model(const ModelConfig& config, int max_batch,
                                  std::shared_ptr<backend::Backend> backend,
                                  const ActivationPolicy& policy = {});
// The same on the CPU backend.
std::unique_ptr<Model> make_model(const ModelConfig& config, int max_batch);
// A model that is never run, made to say what it would need on `device` in `precision` for
// `max_batch` windows (memory()): nothing is allocated, no device is needed.
std::unique_ptr<Model> make_model_plan(const ModelConfig& config, int max_batch,
                                       backend::Device device, backend::Precision precision,
                                       const ActivationPolicy& policy = {});

std::unique_ptr<Model> make_megabyte_model(const ModelConfig& config, int max_batch,
                                           std::shared_ptr<backend::Backend> backend,
                                           backend::Device device, backend::Precision precision,
                                           const ActivationPolicy& policy);
std::unique_ptr<Model> make_byte_transformer_model(const ModelConfig& config, int max_batch,
                                                   std::shared_ptr<backend::Backend> backend,
                                                   backend::Device device,
                                                   backend::Precision precision,
                                                   const ActivationPolicy& policy);

// The targets of a batch: the ids, with every pad replaced by -1 (no loss).
void targets_from_ids(std::int32_t* targets, const std::int32_t* ids, std::size_t n);
// Positions with a target (real bytes) among n ids.
std::int64_t count_targets(const std::int32_t* ids, std::size_t n);

}  // namespace mb::model
