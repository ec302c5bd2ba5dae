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
// the one description of MEGABYTE for both.
#include <algorithm>
#include <stdexcept>

#include "cpu/dropout.hpp"   // splitmix64_mix: the local model's dropout seed
#include "model/model.hpp"
#include "model/transformer_stack.hpp"

namespace mb::model {

namespace {

using backend::Slice;

StackShape stack_shape(const ModelConfig& c, int width, const StackConfig& s) {
  return StackShape{s.layers, width, s.heads, c.ffn_multiplier * width, c.activation, c.dropout,
                    c.layernorm_eps};
}

class MegabyteModel final : public Model {
 public:
  MegabyteModel(const ModelConfig& c, int max_batch, std::shared_ptr<backend::Backend> be,
                backend::Device device, backend::Precision precision)
      : Model(c, max_batch, std::move(be), device, precision),
        T_(c.context), P_(c.patch_size), K_(c.patches()), DG_(c.global.dim), DL_(c.local.dim),
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
    if (max_batch > 0) {
      const std::size_t rows = static_cast<std::size_t>(max_batch) * T_;
      global_.reserve(arena_, max_batch * K_, K_, bf16_activations());
      local_.reserve(arena_, max_batch * T_, P_, bf16_activations());
      auto floats = [&](std::size_t n) { return arena_.reserve<float>(n); };
      auto ints = [&](std::size_t n) { return arena_.reserve<std::int32_t>(n); };
      global_in_ = floats(rows * DG_);
      global_out_ = floats(rows * DG_);
      ids_ = ints(rows);
      local_ids_ = ints(rows);
      targets_ = ints(rows);
      losses_device_ = floats(rows);
      local_in_ = floats(rows * DL_);
      local_out_ = floats(rows * DL_);
      dlocal_out_ = floats(rows * DL_);
      dlocal_in_ = floats(rows * DL_);
      dglobal_out_ = floats(rows * DG_);
      dglobal_in_ = floats(rows * DG_);
      host_local_ids_.resize(rows);
      host_targets_.resize(rows);
    }
    commit_memory();
  }

  LossSum forward(const std::int32_t* ids, int batch, bool training,
                  std::uint64_t dropout_seed) override {
    if (batch < 1 || batch > max_batch_) throw std::logic_error("MegabyteModel: bad batch size");
    backend::Backend& k = *backend_;
    batch_ = batch;
    const int N = batch * T_;
    const std::size_t patch_floats = static_cast<std::size_t>(P_) * DG_;
    // The ids and what is derived from them are made on the host and sent over once.
    for (int n = 0; n < N; ++n) host_local_ids_[n] = n % P_ == 0 ? kPadId : ids[n - 1];
    targets_from_ids(host_targets_.data(), ids, static_cast<std::size_t>(N));
    upload_ids(ids_, ids, static_cast<std::size_t>(N));
    upload_ids(local_ids_, host_local_ids_.data(), static_cast<std::size_t>(N));
    upload_ids(targets_, host_targets_.data(), static_cast<std::size_t>(N));

    // (1), (2): the global input, shifted by one patch.
    for (int b = 0; b < batch; ++b) {
      float* g = global_in_.get() + static_cast<std::size_t>(b) * T_ * DG_;
      k.copy(g, view_.value(global_pad_), patch_floats * sizeof(float));
      k.embedding_forward(g + patch_floats, ids_.get() + static_cast<std::size_t>(b) * T_,
                          view_.value(global_embedding_), T_ - P_, DG_, kEmbeddingRows);
      k.residual_forward(g + patch_floats, g + patch_floats, view_.value(global_position_),
                         static_cast<std::size_t>(T_ - P_) * DG_);
    }
    // (3)
    global_.forward(global_out_.get(), global_in_.get(), batch, K_, training, dropout_seed);

    // (4): project every D_G slice with the shared w_GL, add the previous byte's embedding.
    k.matmul_forward(local_in_.get(), global_out_.get(), nullptr, view_.value(global_to_local_),
                     view_.value_bf16(global_to_local_), nullptr, N, DG_, DL_);
    k.embedding_forward(dlocal_in_.get(), local_ids_.get(), view_.value(local_embedding_), N, DL_,
                        kEmbeddingRows);   // dlocal_in_ is free until backward()
    k.residual_forward(local_in_.get(), local_in_.get(), dlocal_in_.get(),
                       static_cast<std::size_t>(N) * DL_);
    // (5)
    local_.forward(local_out_.get(), local_in_.get(), batch * K_, P_, training,
                   kernels::cpu::splitmix64_mix(dropout_seed ^ 0x4C4F43414Cull));
    // (6)
    if (training) return {0.0, count_targets(ids, static_cast<std::size_t>(N))};
    const backend::CrossEntropyResult ce =
        k.crossentropy_forward(losses_device_.get(), local_out_.get(),
                               view_.value(local_embedding_), targets_.get(), N, DL_, kByteValues);
    fetch_losses(losses_device_, static_cast<std::size_t>(N));
    return {ce.loss, ce.count};
  }

  LossSum backward(float dloss) override {
    backend::Backend& k = *backend_;
    const int batch = batch_, N = batch * T_;
    const std::size_t patch_floats = static_cast<std::size_t>(P_) * DG_;
    // (6)
    k.zero(dlocal_out_.get(), static_cast<std::size_t>(N) * DL_ * sizeof(float));
    const backend::CrossEntropyResult ce = k.crossentropy_backward(
        dlocal_out_.get(), view_.grad(local_embedding_), local_out_.get(),
        view_.value(local_embedding_), targets_.get(), dloss, N, DL_, kByteValues);
    // (5)
    local_.backward(dlocal_in_.get(), dlocal_out_.get());
    // (4)
    k.embedding_backward(view_.grad(local_embedding_), dlocal_in_.get(), local_ids_.get(), N, DL_,
                         kEmbeddingRows);
    k.zero(dglobal_out_.get(), static_cast<std::size_t>(N) * DG_ * sizeof(float));
    k.matmul_backward(dglobal_out_.get(), view_.grad(global_to_local_), nullptr, dlocal_in_.get(),
                      global_out_.get(), nullptr, view_.value(global_to_local_),
                      view_.value_bf16(global_to_local_), N, DG_, DL_);
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
    return {ce.loss, ce.count};
  }

  void logits(float* out, const std::int32_t* ids, int batch) override {
    forward(ids, batch, false, 0);
    tied_logits(out, local_out_.get(), view_.value(local_embedding_), batch * T_, DL_);
  }

 private:
  const int T_, P_, K_, DG_, DL_;
  const std::size_t global_embedding_, global_position_, global_pad_;
  TransformerStack global_;
  const std::size_t global_to_local_, local_embedding_;
  TransformerStack local_;

  int batch_ = 0;
  Slice<float> global_in_, global_out_, local_in_, local_out_, losses_device_;
  Slice<float> dlocal_out_, dlocal_in_, dglobal_out_, dglobal_in_;
  Slice<std::int32_t> ids_, local_ids_, targets_;
  std::vector<std::int32_t> host_local_ids_, host_targets_;
};

}  // namespace

std::unique_ptr<Model> make_megabyte_model(const ModelConfig& config, int max_batch,
                                           std::shared_ptr<backend::Backend> backend,
                                           backend::Device device,
                                           backend::Precision precision) {
  return std::make_unique<MegabyteModel>(config, max_batch, std::move(backend), device,
                                         precision);
}

}  // namespace mb::model
