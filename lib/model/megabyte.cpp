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
#include <algorithm>

#include "cpu/crossentropy.hpp"
#include "cpu/dropout.hpp"
#include "cpu/embedding.hpp"
#include "cpu/matmul.hpp"
#include "cpu/residual.hpp"
#include "model/model.hpp"
#include "model/transformer_stack.hpp"

namespace mb::model {

namespace k = mb::kernels::cpu;

namespace {

StackShape stack_shape(const ModelConfig& c, int width, const StackConfig& s) {
  return StackShape{s.layers, width, s.heads, c.ffn_multiplier * width, c.activation, c.dropout,
                    c.layernorm_eps};
}

class MegabyteModel final : public Model {
 public:
  MegabyteModel(const ModelConfig& c, int max_batch)
      : Model(c, max_batch),
        T_(c.context), P_(c.patch_size), K_(c.patches()), DG_(c.global.dim), DL_(c.local.dim),
        global_embedding_(params_.add("global.byte_embedding", {kEmbeddingRows, DG_},
                                      ParamRole::weight, ParamGroup::embedding)),
        global_position_(params_.add("global.position_embedding", {T_, DG_}, ParamRole::weight,
                                     ParamGroup::embedding)),
        global_pad_(params_.add("global.pad_patch", {std::int64_t{P_} * DG_}, ParamRole::weight,
                                ParamGroup::embedding)),
        global_(params_, "global.", stack_shape(c, P_ * DG_, c.global), ParamGroup::global),
        global_to_local_(params_.add("local.global_projection.weight", {DL_, DG_},
                                     ParamRole::weight, ParamGroup::local)),
        local_embedding_(params_.add("local.byte_embedding", {kEmbeddingRows, DL_},
                                     ParamRole::weight, ParamGroup::embedding)),
        local_(params_, "local.", stack_shape(c, DL_, c.local), ParamGroup::local) {
    if (max_batch == 0) return;   // a description of the parameters only
    params_.allocate();
    const std::size_t rows = static_cast<std::size_t>(max_batch) * T_;
    global_.reserve(max_batch * K_, K_);
    local_.reserve(max_batch * T_, P_);
    global_in_.resize(rows * DG_);
    global_out_.resize(rows * DG_);
    ids_.resize(rows);
    local_ids_.resize(rows);
    targets_.resize(rows);
    losses_.resize(rows);
    local_in_.resize(rows * DL_);
    local_out_.resize(rows * DL_);
    dlocal_out_.resize(rows * DL_);
    dlocal_in_.resize(rows * DL_);
    dglobal_out_.resize(rows * DG_);
    dglobal_in_.resize(rows * DG_);
  }

  LossSum forward(const std::int32_t* ids, int batch, bool training,
                  std::uint64_t dropout_seed) override {
    if (batch < 1 || batch > max_batch_) throw std::logic_error("MegabyteModel: bad batch size");
    batch_ = batch;
    const int N = batch * T_;
    std::copy_n(ids, N, ids_.begin());
    ids = ids_.data();
    const std::size_t patch_floats = static_cast<std::size_t>(P_) * DG_;

    // (1), (2): the global input, shifted by one patch.
    for (int b = 0; b < batch; ++b) {
      float* g = global_in_.data() + static_cast<std::size_t>(b) * T_ * DG_;
      std::copy_n(params_.value(global_pad_), patch_floats, g);
      k::embedding_forward(g + patch_floats, ids + static_cast<std::size_t>(b) * T_,
                           params_.value(global_embedding_), T_ - P_, DG_, kEmbeddingRows);
      k::residual_forward(g + patch_floats, g + patch_floats, params_.value(global_position_),
                          static_cast<std::size_t>(T_ - P_) * DG_);
    }
    // (3)
    global_.forward(global_out_.data(), global_in_.data(), batch, K_, training, dropout_seed);

    // (4): project every D_G slice with the shared w_GL, add the previous byte's embedding.
    for (int n = 0; n < N; ++n) local_ids_[n] = n % P_ == 0 ? kPadId : ids[n - 1];
    k::matmul_forward(local_in_.data(), global_out_.data(), params_.value(global_to_local_),
                      nullptr, N, DG_, DL_);
    k::embedding_forward(dlocal_in_.data(), local_ids_.data(), params_.value(local_embedding_),
                         N, DL_, kEmbeddingRows);   // dlocal_in_ is free until backward()
    k::residual_forward(local_in_.data(), local_in_.data(), dlocal_in_.data(),
                        static_cast<std::size_t>(N) * DL_);
    // (5)
    local_.forward(local_out_.data(), local_in_.data(), batch * K_, P_, training,
                   k::splitmix64_mix(dropout_seed ^ 0x4C4F43414Cull));
    // (6)
    targets_from_ids(targets_.data(), ids, static_cast<std::size_t>(N));
    if (training) return {0.0, k::crossentropy_count(targets_.data(), N)};
    const k::CrossEntropySum ce = k::crossentropy_forward(
        losses_.data(), local_out_.data(), params_.value(local_embedding_), targets_.data(), N, DL_,
        kByteValues);
    return {ce.loss, ce.count};
  }

  LossSum backward(float dloss) override {
    const int batch = batch_, N = batch * T_;
    const std::size_t patch_floats = static_cast<std::size_t>(P_) * DG_;
    // (6)
    std::fill_n(dlocal_out_.begin(), static_cast<std::size_t>(N) * DL_, 0.0f);
    const k::CrossEntropySum ce = k::crossentropy_backward(
        dlocal_out_.data(), params_.grad(local_embedding_), local_out_.data(),
        params_.value(local_embedding_), targets_.data(), dloss, N, DL_, kByteValues);
    // (5)
    local_.backward(dlocal_in_.data(), dlocal_out_.data());
    // (4)
    k::embedding_backward(params_.grad(local_embedding_), dlocal_in_.data(), local_ids_.data(), N,
                          DL_, kEmbeddingRows);
    std::fill_n(dglobal_out_.begin(), static_cast<std::size_t>(N) * DG_, 0.0f);
    k::matmul_backward(dglobal_out_.data(), params_.grad(global_to_local_), nullptr,
                       dlocal_in_.data(), global_out_.data(), params_.value(global_to_local_), N,
                       DG_, DL_);
    // (3)
    global_.backward(dglobal_in_.data(), dglobal_out_.data());
    // (2), (1)
    for (int b = 0; b < batch; ++b) {
      const float* dg = dglobal_in_.data() + static_cast<std::size_t>(b) * T_ * DG_;
      k::residual_backward(params_.grad(global_pad_), nullptr, dg, patch_floats);
      k::embedding_backward(params_.grad(global_embedding_), dg + patch_floats,
                            ids_.data() + static_cast<std::size_t>(b) * T_, T_ - P_, DG_,
                            kEmbeddingRows);
      k::residual_backward(params_.grad(global_position_), nullptr, dg + patch_floats,
                           static_cast<std::size_t>(T_ - P_) * DG_);
    }
    return {ce.loss, ce.count};
  }

  void logits(float* out, const std::int32_t* ids, int batch) override {
    forward(ids, batch, false, 0);
    k::matmul_forward(out, local_out_.data(), params_.value(local_embedding_), nullptr,
                      batch * T_, DL_, kByteValues);
  }

  std::size_t activation_floats() const override {
    const std::size_t rows = static_cast<std::size_t>(max_batch_) * T_;
    return static_cast<std::size_t>(max_batch_) * K_ * global_.floats_per_row() +
           rows * local_.floats_per_row() + rows * (4 * DG_ + 4 * DL_ + 2);
  }

 private:
  const int T_, P_, K_, DG_, DL_;
  const std::size_t global_embedding_, global_position_, global_pad_;
  TransformerStack global_;
  const std::size_t global_to_local_, local_embedding_;
  TransformerStack local_;

  int batch_ = 0;
  std::vector<float> global_in_, global_out_, local_in_, local_out_;
  std::vector<float> dlocal_out_, dlocal_in_, dglobal_out_, dglobal_in_;
  std::vector<std::int32_t> ids_, local_ids_, targets_;
};

}  // namespace

std::unique_ptr<Model> make_megabyte_model(const ModelConfig& config, int max_batch) {
  return std::make_unique<MegabyteModel>(config, max_batch);
}

}  // namespace mb::model
