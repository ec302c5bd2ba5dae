// MEGABYTE (Yu et al. 2023, section 2): a global transformer over patches of P bytes and a
// local transformer inside each patch. The comments name the paper's equations 1-6.
//
//   (1) h_embed[t]      = E_G[x_t] + E_pos[t]                         t < T - P
//   (2) h_global_in[k]  = pad_patch                                   k = 0
//                         concat(h_embed[(k-1)P .. kP))                k > 0
//   (3) h_global_out    = transformer_G(h_global_in)                  K = T/P positions, P·D_G wide
//   (4) h_local_in[k,p] = w_GL · h_global_out[k, p·D_G : (p+1)·D_G] + E_L[x_{kP+p-1}]
//                         (E_L[pad] at p = 0: never the last byte of the previous patch)
//   (5) h_local_out[k]  = transformer_L(h_local_in[k])                one batch of B·K patches
//   (6) p(x_{kP+p})     = softmax(h_local_out[k,p] · E_L[0:256]ᵀ)     (tied output head)
//
// Because the rows of h_embed for consecutive bytes are contiguous, patch k of the global input
// is literally rows (k-1)P..kP-1 of h_embed, and slice p of a global output row is literally row
// kP+p of the same buffer viewed as [B·T, D_G]: the concatenations and slicings of the paper are
// free.
//
// The ops run on the model's backend (the CPU or a CUDA device; see model.hpp): this file is
// the one description of MEGABYTE for both, for whole windows (MegabyteModel::forward and
// backward) and for cached generation (MegabyteDecoder, one patch and one byte at a time),
// which share the equations' code (global_input, local_input) and the stacks.
#include <algorithm>
#include <stdexcept>

#include "core/rng.hpp"
#include "model/model.hpp"
#include "model/transformer_stack.hpp"

namespace mb::model {

namespace {

using backend::Slice;

StackShape stack_shape(const ModelConfig& c, int width, const StackConfig& s) {
  return StackShape{s.layers,     width,     s.heads,        c.ffn_multiplier * width,
                    c.activation, c.dropout, c.layernorm_eps};
}

class MegabyteDecoder;

class MegabyteModel final : public Model {
 public:
  MegabyteModel(const ModelConfig& c, int max_batch, std::shared_ptr<backend::Backend> be,
                backend::Device device, backend::Precision precision,
                const ActivationPolicy& policy)
      : Model(c, max_batch, std::move(be), device, precision, policy.inference_only),
        T_(c.context),
        P_(c.patch_size),
        K_(c.patches()),
        DG_(c.global.dim),
        DL_(c.local.dim),
        global_embedding_(params_.add("global.byte_embedding", {kEmbeddingRows, DG_},
                                      ParamRole::weight, ParamGroup::embedding)),
        global_position_(params_.add("global.position_embedding", {T_, DG_}, ParamRole::weight,
                                     ParamGroup::embedding)),
        global_pad_(params_.add("global.pad_patch", {std::int64_t{P_} * DG_}, ParamRole::weight,
                                ParamGroup::embedding)),
        global_(params_, view_, backend_.get(), "global.", stack_shape(c, P_ * DG_, c.global),
                ParamGroup::global),
        global_to_local_(params_.add("local.global_projection.weight", {DL_, DG_},
                                     ParamRole::weight, ParamGroup::local)),
        local_embedding_(params_.add("local.byte_embedding", {kEmbeddingRows, DL_},
                                     ParamRole::weight, ParamGroup::embedding)),
        local_(params_, view_, backend_.get(), "local.", stack_shape(c, DL_, c.local),
               ParamGroup::local) {
    check_head_dim(P_ * DG_, c.global.heads, "model.global.heads");
    check_head_dim(DL_, c.local.heads, "model.local.heads");
    if (policy.local_chunk < 0) throw std::logic_error("MegabyteModel: negative local chunk");
    if (max_batch > 0) {
      const std::size_t rows = static_cast<std::size_t>(max_batch) * T_;
      // The local model's buffers hold one chunk of patches: all of a batch's, or local_chunk.
      const int all_patches = max_batch * K_;
      max_chunk_ = policy.local_chunk > 0 ? std::min(policy.local_chunk, all_patches) : all_patches;
      const std::size_t chunk_rows = static_cast<std::size_t>(max_chunk_) * P_;
      const bool infer_only = policy.inference_only;
      global_.reserve(arena_, max_batch * K_, K_, bf16_activations(), policy.recompute_global,
                      infer_only);
      local_.reserve(arena_, static_cast<int>(chunk_rows), P_, bf16_activations(),
                     policy.recompute_local, infer_only);
      auto floats = [&](std::size_t n) { return arena_.reserve<float>(n); };
      auto ints = [&](std::size_t n) { return arena_.reserve<std::int32_t>(n); };
      global_in_ = floats(rows * DG_);
      global_out_ = floats(rows * DG_);
      ids_ = ints(rows);
      local_ids_ = ints(rows);
      targets_ = ints(rows);
      losses_device_ = floats(rows);
      local_in_ = floats(chunk_rows * DL_);
      local_out_ = floats(chunk_rows * DL_);
      dlocal_in_ = floats(chunk_rows * DL_);  // also (4)'s scratch in every forward
      if (!infer_only) {
        dlocal_out_ = floats(chunk_rows * DL_);
        dglobal_out_ = floats(rows * DG_);
        dglobal_in_ = floats(rows * DG_);
        dhead_ = floats(static_cast<std::size_t>(kByteValues) * DL_);
      }
      if (backend_) {  // a plan (no backend) only sizes the device buffers
        host_local_ids_.resize(rows);
        host_targets_.resize(rows);
      }
    }
    commit_memory();
  }

  LossSum forward(const std::int32_t* ids, int batch, bool training, std::uint64_t dropout_seed,
                  int first_window = 0) override {
    check_trainable(training);
    forward_kept_ = training;
    first_window_ = first_window;
    run_global(ids, batch, training, dropout_seed);
    backend::Backend& k = *backend_;
    const int N = batch * T_, patches = batch * K_;
    if (training) {
      // One chunk: (4) and (5) now, kept for backward(); several: in backward(), a chunk at a
      // time. (6) is computed there either way (the fused head and loss).
      if (chunk_patches() >= patches) run_local(0, patches, true);
      return {0.0, count_targets(ids, static_cast<std::size_t>(N))};
    }
    // (4)-(6) a chunk at a time, the loss of every position kept.
    LossSum sum;
    for (int first = 0; first < patches; first += chunk_patches()) {
      const int n = std::min(chunk_patches(), patches - first);
      const std::size_t r0 = static_cast<std::size_t>(first) * P_;
      run_local(first, n, false);
      const backend::CrossEntropyResult ce = k.crossentropy_forward(
          losses_device_.get() + r0, local_out_.get(), view_.value(local_embedding_),
          targets_.get() + r0, n * P_, DL_, kByteValues);
      sum.loss += ce.loss;
      sum.count += ce.count;
    }
    fetch_losses(losses_device_, static_cast<std::size_t>(N));
    return sum;
  }

  LossSum backward(float dloss) override {
    backend::Backend& k = *backend_;
    if (!forward_kept_)
      throw std::logic_error("MegabyteModel::backward: no training forward() before it");
    const int batch = batch_, patches = batch * K_;
    const std::size_t patch_floats = static_cast<std::size_t>(P_) * DG_;
    // (6), (5), (4) a chunk of patches at a time (one chunk: its forward ran in forward());
    // each chunk's rows of the global output's gradient are its own, written (not added to)
    // by matmul_backward.
    // The tied head's part of E_L's gradient is summed apart and added last: within it and
    // within the embeddings' part the rows are added in order, so chunks give the unchunked
    // bits only if the two parts do not interleave chunk by chunk.
    const std::size_t head_floats = static_cast<std::size_t>(kByteValues) * DL_;
    k.zero(dhead_.get(), head_floats * sizeof(float));
    LossSum sum;
    for (int first = 0; first < patches; first += chunk_patches()) {
      const int n = std::min(chunk_patches(), patches - first), rows = n * P_;
      const std::size_t r0 = static_cast<std::size_t>(first) * P_;
      if (n < patches) run_local(first, n, true);
      // (6)
      k.zero(dlocal_out_.get(), static_cast<std::size_t>(rows) * DL_ * sizeof(float));
      const backend::CrossEntropyResult ce = k.crossentropy_backward(
          dlocal_out_.get(), dhead_.get(), local_out_.get(), view_.value(local_embedding_),
          targets_.get() + r0, dloss, rows, DL_, kByteValues);
      sum.loss += ce.loss;
      sum.count += ce.count;
      // (5)
      local_.backward(dlocal_in_.get(), dlocal_out_.get());
      // (4)
      k.embedding_backward(view_.grad(local_embedding_), dlocal_in_.get(), local_ids_.get() + r0,
                           rows, DL_, kEmbeddingRows);
      k.matmul_backward(dglobal_out_.get() + r0 * DG_, view_.grad(global_to_local_), nullptr,
                        dlocal_in_.get(), global_out_.get() + r0 * DG_,
                        view_.weight(global_to_local_), rows, DG_, DL_);
    }
    k.residual_backward(view_.grad(local_embedding_), nullptr, dhead_.get(), head_floats);
    // (3)
    global_.backward(dglobal_in_.get(), dglobal_out_.get());
    // (2), (1)
    for (int b = 0; b < batch; ++b) {
      const float* dg = dglobal_in_.get() + static_cast<std::size_t>(b) * T_ * DG_;
      k.residual_backward(view_.grad(global_pad_), nullptr, dg, patch_floats);
      k.embedding_backward(view_.grad(global_embedding_), dg + patch_floats,
                           ids_.get() + static_cast<std::size_t>(b) * T_, T_ - P_, DG_,
                           kEmbeddingRows);
      k.residual_backward(view_.grad(global_position_), nullptr, dg + patch_floats,
                          static_cast<std::size_t>(T_ - P_) * DG_);
    }
    return sum;
  }

  void logits(float* out, const std::int32_t* ids, int batch) override {
    forward_kept_ = false;
    run_global(ids, batch, false, 0);
    const int patches = batch * K_;
    for (int first = 0; first < patches; first += chunk_patches()) {
      const int n = std::min(chunk_patches(), patches - first);
      run_local(first, n, false);
      tied_logits(out + static_cast<std::size_t>(first) * P_ * kByteValues, local_out_.get(),
                  view_.value(local_embedding_), n * P_, DL_);
    }
  }

  std::unique_ptr<CachedDecoder> make_decoder(int batch) const override;

 private:
  friend class MegabyteDecoder;

  // The patches of a chunk of the local model (the whole batch's, or train.local_chunk).
  int chunk_patches() const { return max_chunk_; }

  // The ids of a batch to the device, then (1)-(3): the global model over every patch.
  void run_global(const std::int32_t* ids, int batch, bool training, std::uint64_t dropout_seed) {
    if (batch < 1 || batch > max_batch_) throw std::logic_error("MegabyteModel: bad batch size");
    batch_ = batch;
    local_seed_ = splitmix64_mix(dropout_seed ^ 0x4C4F43414Cull);
    const int N = batch * T_;
    // The ids and what is derived from them are made on the host and sent over once.
    for (int n = 0; n < N; ++n) host_local_ids_[n] = n % P_ == 0 ? kPadId : ids[n - 1];
    targets_from_ids(host_targets_.data(), ids, static_cast<std::size_t>(N));
    upload_ids(ids_, ids, static_cast<std::size_t>(N));
    upload_ids(local_ids_, host_local_ids_.data(), static_cast<std::size_t>(N));
    upload_ids(targets_, host_targets_.data(), static_cast<std::size_t>(N));
    // (1), (2): the global input, shifted by one patch.
    global_input(global_in_.get(), ids_.get(), batch, 0, K_, T_);
    // (3), keeping what global_.backward() needs only when training
    if (training)
      global_.forward(global_out_.get(), global_in_.get(), batch, K_, true, dropout_seed,
                      static_cast<std::uint64_t>(first_window_) * K_);
    else
      global_.infer(global_out_.get(), global_in_.get(), batch, K_);
  }

  // (4), (5) for `patches` patches from patch `first` (of all the batch's, side by side) into
  // local_out_, keeping what local_.backward() needs when training; dropout masks as the whole
  // batch draws them at those rows.
  void run_local(int first, int patches, bool training) {
    const std::size_t r0 = static_cast<std::size_t>(first) * P_;
    const int rows = patches * P_;
    // (4): every D_G slice projected, plus the previous byte's embedding (in dlocal_in_, free
    // until the local backward pass).
    project_global_slices(local_in_.get(), global_out_.get() + r0 * DG_, rows);
    local_input(local_in_.get(), local_in_.get(), DL_, local_ids_.get() + r0, rows,
                dlocal_in_.get());
    // (5)
    if (training)
      local_.forward(local_out_.get(), local_in_.get(), patches, P_, true, local_seed_,
                     static_cast<std::uint64_t>(first_window_) * T_ + r0);
    else
      local_.infer(local_out_.get(), local_in_.get(), patches, P_);
  }

  // (1), (2): out[sequences, patches, P·D_G] = global input patches first .. first+patches-1
  // of each sequence: the pad patch for patch 0; for patch j > 0 the embeddings of patch j-1's
  // bytes side by side, plus their positions. `ids` holds each sequence's bytes from patch
  // max(first, 1) - 1 on, ids_stride apart.
  void global_input(float* out, const std::int32_t* ids, int sequences, int first, int patches,
                    std::size_t ids_stride) const {
    backend::Backend& k = *backend_;
    const std::size_t patch = static_cast<std::size_t>(P_) * DG_;
    const int pads = first == 0 ? 1 : 0;
    const int embedded = patches - pads;
    // Rows b·P + i of [sequences·patches·P, D_G] are byte i of sequence b's patch: one gather
    // for all sequences where their ids lie side by side.
    const bool one_gather = pads == 0 && ids_stride == static_cast<std::size_t>(patches) * P_;
    if (one_gather)
      k.embedding_forward(out, ids, view_.value(global_embedding_), sequences * patches * P_, DG_,
                          kEmbeddingRows);
    for (int b = 0; b < sequences; ++b) {
      float* o = out + static_cast<std::size_t>(b) * patches * patch;
      if (pads) k.copy(o, view_.value(global_pad_), patch * sizeof(float));
      if (embedded == 0) continue;
      float* e = o + pads * patch;
      if (!one_gather)
        k.embedding_forward(e, ids + b * ids_stride, view_.value(global_embedding_), embedded * P_,
                            DG_, kEmbeddingRows);
      k.residual_forward(e, e, view_.value(global_position_) + (first + pads - 1) * patch,
                         embedded * patch);
    }
  }
  // (4), first half: out[rows, D_L] = w_GL · global_out[rows, D_G], every D_G slice of the
  // global output (a [K, P·D_G] row is P rows of [K·P, D_G]: the slicing is free).
  void project_global_slices(float* out, const float* global_out, int rows) const {
    backend_->matmul_forward(out, global_out, view_.weight(global_to_local_), nullptr, rows, DG_,
                             DL_);
  }
  // (4), second half: out[r] = slices[r] + E_L[ids[r]] for r < rows, slice r at
  // slices + r · slice_stride; `embeddings` [rows, D_L] is scratch (it may be out).
  void local_input(float* out, const float* slices, std::size_t slice_stride,
                   const std::int32_t* ids, int rows, float* embeddings) const {
    backend::Backend& k = *backend_;
    k.embedding_forward(embeddings, ids, view_.value(local_embedding_), rows, DL_, kEmbeddingRows);
    const std::size_t dl = DL_;
    if (slice_stride == dl) {
      k.residual_forward(out, slices, embeddings, rows * dl);
      return;
    }
    for (int r = 0; r < rows; ++r)
      k.residual_forward(out + r * dl, slices + r * slice_stride, embeddings + r * dl, dl);
  }

  const int T_, P_, K_, DG_, DL_;
  const std::size_t global_embedding_, global_position_, global_pad_;
  TransformerStack global_;
  const std::size_t global_to_local_, local_embedding_;
  TransformerStack local_;

  int batch_ = 0;
  bool forward_kept_ = false;     // the last forward() kept what backward() reads (was training)
  int max_chunk_ = 0;             // patches the local buffers hold
  std::uint64_t local_seed_ = 0;  // the local stack's dropout seed of the last run_global
  int first_window_ = 0;          // of the last forward(): where its dropout masks start
  Slice<float> global_in_, global_out_, local_in_, local_out_, losses_device_;
  Slice<float> dlocal_out_, dlocal_in_, dglobal_out_, dglobal_in_;
  Slice<float> dhead_;  // the tied head's part of E_L's gradient, for one backward pass
  Slice<std::int32_t> ids_, local_ids_, targets_;
  std::vector<std::int32_t> host_local_ids_, host_targets_;
};

// MEGABYTE one patch and one byte at a time. The global stack runs once per patch, its
// attention reading a cache of the earlier patches; its output for patch k (P·D_G wide) is
// projected to P slices of D_L once. Then the local stack runs P steps inside the patch with a
// cache of at most P positions, emptied at every patch. The global output for patch k depends
// only on bytes < kP, so it is computed when the first byte of patch k is needed, which also
// makes a prompt that ends inside a patch work: the bytes of the prompt's last patch go
// through the local model, earlier prompt patches only through the global one.
class MegabyteDecoder final : public CachedDecoder {
 public:
  MegabyteDecoder(const MegabyteModel& m, int batch)
      : m_(m),
        k_(*m.backend()),
        B_(batch),
        global_(m.global_.reserve_cache(arena_, batch, m.K_, m.bf16_activations())),
        local_(m.local_.reserve_cache(arena_, batch, m.P_, m.bf16_activations())) {
    const std::size_t rows = static_cast<std::size_t>(batch);
    const std::size_t patch = static_cast<std::size_t>(m.P_) * m.DG_;
    logits_ = arena_.reserve<float>(rows * kByteValues);
    ids_ = arena_.reserve<std::int32_t>(rows * m.P_);
    global_in_ = arena_.reserve<float>(rows * patch);
    global_out_ = arena_.reserve<float>(rows * patch);
    slices_ = arena_.reserve<float>(rows * m.P_ * m.DL_);
    local_in_ = arena_.reserve<float>(rows * m.DL_);
    local_out_ = arena_.reserve<float>(rows * m.DL_);
    arena_.commit(k_);
  }

  void reset() override {
    global_.reset();
    local_.reset();
    patch_ = -1;
  }

  const float* logits(const std::vector<std::vector<std::uint8_t>>& bytes, int n) override {
    const int P = m_.P_, kp = n / P, p = n % P;
    // (1)-(3): the global steps of every patch up to this one; the cache makes each one step.
    // The last one run is patch kp's, since no earlier call ran past the patch of its position.
    while (global_.length() <= kp) {
      const int j = global_.length();
      if (j > 0) upload_ids(bytes, static_cast<std::size_t>(j - 1) * P, P);
      m_.global_input(global_in_.get(), ids_.get(), B_, j, 1, P);
      m_.global_.step(global_out_.get(), global_in_.get(), global_);
    }
    if (patch_ != kp) {
      // (4), first half: the P slices of patch kp's global output, each mapped to D_L, once.
      m_.project_global_slices(slices_.get(), global_out_.get(), B_ * P);
      local_.reset();
      patch_ = kp;
    }
    // (4), (5): local positions of this patch up to p; position q's input is its slice plus
    // the embedding of the byte before it in the patch (the pad at q = 0).
    while (local_.length() <= p) {
      const int q = local_.length();
      host_ids_.resize(static_cast<std::size_t>(B_));
      for (int b = 0; b < B_; ++b)
        host_ids_[b] = q == 0 ? kPadId : bytes[b][static_cast<std::size_t>(kp) * P + q - 1];
      k_.upload(ids_.get(), host_ids_.data(), host_ids_.size() * sizeof(std::int32_t));
      const std::size_t slice_stride = static_cast<std::size_t>(P) * m_.DL_;
      m_.local_input(local_in_.get(), slices_.get() + static_cast<std::size_t>(q) * m_.DL_,
                     slice_stride, ids_.get(), B_, local_in_.get());
      m_.local_.step(local_out_.get(), local_in_.get(), local_);
    }
    // (6): the tied head, in fp32 as the loss computes it.
    k_.head_logits(logits_.get(), local_out_.get(), m_.view_.value(m_.local_embedding_), B_, m_.DL_,
                   kByteValues);
    return logits_.get();
  }

  std::size_t device_bytes() const override { return arena_.bytes(); }

 private:
  // bytes[b][from .. from + count) of every sequence b, side by side, as ids on the device.
  void upload_ids(const std::vector<std::vector<std::uint8_t>>& bytes, std::size_t from,
                  int count) {
    host_ids_.resize(static_cast<std::size_t>(B_) * count);
    for (int b = 0; b < B_; ++b)
      for (int i = 0; i < count; ++i)
        host_ids_[static_cast<std::size_t>(b) * count + i] = bytes[b][from + i];
    k_.upload(ids_.get(), host_ids_.data(), host_ids_.size() * sizeof(std::int32_t));
  }

  const MegabyteModel& m_;
  backend::Backend& k_;
  const int B_;
  backend::Arena arena_;
  TransformerStack::Cache global_, local_;
  Slice<float> logits_, global_in_, global_out_, slices_, local_in_, local_out_;
  Slice<std::int32_t> ids_;
  std::vector<std::int32_t> host_ids_;
  int patch_ = -1;  // the patch whose slices_ and local cache are current
};

std::unique_ptr<CachedDecoder> MegabyteModel::make_decoder(int batch) const {
  check_decodable(batch);
  return std::make_unique<MegabyteDecoder>(*this, batch);
}

}  // namespace

std::unique_ptr<Model> make_megabyte_model(const ModelConfig& config, int max_batch,
                                           std::shared_ptr<backend::Backend> backend,
                                           backend::Device device, backend::Precision precision,
                                           const ActivationPolicy& policy) {
  return std::make_unique<MegabyteModel>(config, max_batch, std::move(backend), device, precision,
                                         policy);
}

}  // namespace mb::model
