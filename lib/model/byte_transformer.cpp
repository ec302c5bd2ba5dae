// The paper's baseline: a decoder-only transformer over the bytes themselves.
//   h_in[t] = E[x_{t-1}] + E_pos[t]   (E[pad] at t = 0)
//   p(x_t)  = softmax(transformer(h_in)[t] · E[0:256]ᵀ)   (tied output head)
// It is MEGABYTE's global model with P = 1 and no local model. The equations are written once,
// for whole windows (ByteTransformerModel) and for cached generation (ByteTransformerDecoder,
// one step per byte): input_embeddings and the stack are shared.
#include <algorithm>
#include <stdexcept>

#include "model/model.hpp"
#include "model/transformer_stack.hpp"

namespace mb::model {

namespace {

using backend::Slice;

class ByteTransformerDecoder;

class ByteTransformerModel final : public Model {
 public:
  ByteTransformerModel(const ModelConfig& c, int max_batch, std::shared_ptr<backend::Backend> be,
                       backend::Device device, backend::Precision precision,
                       const ActivationPolicy& policy)
      : Model(c, max_batch, std::move(be), device, precision, policy.inference_only),
        T_(c.context),
        D_(c.global.dim),
        embedding_(params_.add("byte_embedding", {kEmbeddingRows, D_}, ParamRole::weight,
                               ParamGroup::embedding)),
        position_(
            params_.add("position_embedding", {T_, D_}, ParamRole::weight, ParamGroup::embedding)),
        stack_(params_, view_, backend_.get(), "",
               StackShape{c.global.layers, D_, c.global.heads, c.ffn_multiplier * D_, c.activation,
                          c.dropout, c.layernorm_eps},
               ParamGroup::global) {
    check_head_dim(D_, c.global.heads, "model.global.heads");
    if (max_batch > 0) {
      const std::size_t rows = static_cast<std::size_t>(max_batch) * T_;
      if (policy.recompute_local)
        throw std::logic_error("ByteTransformerModel: a byte transformer has no local stack");
      stack_.reserve(arena_, max_batch * T_, T_, bf16_activations(), policy.recompute_global,
                     policy.inference_only);
      inputs_ = arena_.reserve<std::int32_t>(rows);
      targets_ = arena_.reserve<std::int32_t>(rows);
      losses_device_ = arena_.reserve<float>(rows);
      in_ = arena_.reserve<float>(rows * D_);
      out_ = arena_.reserve<float>(rows * D_);
      if (!policy.inference_only) {
        dout_ = arena_.reserve<float>(rows * D_);
        din_ = arena_.reserve<float>(rows * D_);
      }
      if (backend_) {  // a plan (no backend) only sizes the device buffers
        host_inputs_.resize(rows);
        host_targets_.resize(rows);
      }
    }
    commit_memory();
  }

  LossSum forward(const std::int32_t* ids, int batch, bool training, std::uint64_t dropout_seed,
                  int first_window = 0) override {
    check_trainable(training);
    forward_kept_ = training;
    if (batch < 1 || batch > max_batch_)
      throw std::logic_error("ByteTransformerModel: bad batch size");
    backend::Backend& k = *backend_;
    batch_ = batch;
    const int N = batch * T_;
    // The input at t is the byte before it: shift right by one, a pad first.
    for (int n = 0; n < N; ++n) host_inputs_[n] = n % T_ == 0 ? kPadId : ids[n - 1];
    targets_from_ids(host_targets_.data(), ids, static_cast<std::size_t>(N));
    upload_ids(inputs_, host_inputs_.data(), static_cast<std::size_t>(N));
    upload_ids(targets_, host_targets_.data(), static_cast<std::size_t>(N));

    input_embeddings(in_.get(), inputs_.get(), batch, 0, T_);
    if (training) {  // the loss and its gradient in backward() (the fused head and loss)
      stack_.forward(out_.get(), in_.get(), batch, T_, true, dropout_seed,
                     static_cast<std::uint64_t>(first_window) * T_);
      return {0.0, count_targets(ids, static_cast<std::size_t>(N))};
    }
    stack_.infer(out_.get(), in_.get(), batch, T_);
    const backend::CrossEntropyResult ce =
        k.crossentropy_forward(losses_device_.get(), out_.get(), view_.value(embedding_),
                               targets_.get(), N, D_, kByteValues);
    fetch_losses(losses_device_, static_cast<std::size_t>(N));
    return {ce.loss, ce.count};
  }

  LossSum backward(float dloss) override {
    backend::Backend& k = *backend_;
    if (!forward_kept_)
      throw std::logic_error("ByteTransformerModel::backward: no training forward() before it");
    const int N = batch_ * T_;
    k.zero(dout_.get(), static_cast<std::size_t>(N) * D_ * sizeof(float));
    const backend::CrossEntropyResult ce =
        k.crossentropy_backward(dout_.get(), view_.grad(embedding_), out_.get(),
                                view_.value(embedding_), targets_.get(), dloss, N, D_, kByteValues);
    stack_.backward(din_.get(), dout_.get());
    k.embedding_backward(view_.grad(embedding_), din_.get(), inputs_.get(), N, D_, kEmbeddingRows);
    for (int b = 0; b < batch_; ++b)
      k.residual_backward(view_.grad(position_), nullptr,
                          din_.get() + static_cast<std::size_t>(b) * T_ * D_,
                          static_cast<std::size_t>(T_) * D_);
    return {ce.loss, ce.count};
  }

  void logits(float* out, const std::int32_t* ids, int batch) override {
    forward(ids, batch, false, 0);
    tied_logits(out, out_.get(), view_.value(embedding_), batch * T_, D_);
  }

  std::unique_ptr<CachedDecoder> make_decoder(int batch) const override;

 private:
  friend class ByteTransformerDecoder;

  // out[sequences, count, D] = E[ids] + E_pos[first .. first + count) for each sequence: the
  // inputs of positions first.. of each, ids [sequences, count] the bytes before them (pads
  // at position 0).
  void input_embeddings(float* out, const std::int32_t* ids, int sequences, int first,
                        int count) const {
    backend::Backend& k = *backend_;
    const std::size_t rows = static_cast<std::size_t>(count) * D_;
    k.embedding_forward(out, ids, view_.value(embedding_), sequences * count, D_, kEmbeddingRows);
    for (int b = 0; b < sequences; ++b) {
      float* row = out + b * rows;
      k.residual_forward(row, row, view_.value(position_) + static_cast<std::size_t>(first) * D_,
                         rows);
    }
  }

  const int T_, D_;
  const std::size_t embedding_, position_;
  TransformerStack stack_;
  int batch_ = 0;
  bool forward_kept_ = false;  // the last forward() kept what backward() reads (was training)
  Slice<std::int32_t> inputs_, targets_;
  Slice<float> losses_device_, in_, out_, dout_, din_;
  std::vector<std::int32_t> host_inputs_, host_targets_;
};

// One stack step per byte, over one cache of byte positions.
class ByteTransformerDecoder final : public CachedDecoder {
 public:
  ByteTransformerDecoder(const ByteTransformerModel& m, int batch)
      : m_(m),
        k_(*m.backend()),
        B_(batch),
        cache_(m.stack_.reserve_cache(arena_, batch, m.T_, m.bf16_activations())) {
    const std::size_t rows = static_cast<std::size_t>(batch);
    logits_ = arena_.reserve<float>(rows * kByteValues);
    ids_ = arena_.reserve<std::int32_t>(rows);
    in_ = arena_.reserve<float>(rows * m.D_);
    out_ = arena_.reserve<float>(rows * m.D_);
    arena_.commit(k_);
  }

  void reset() override { cache_.reset(); }

  const float* logits(const std::vector<std::vector<std::uint8_t>>& bytes, int n) override {
    while (cache_.length() <= n) {
      const int t = cache_.length();
      host_ids_.resize(static_cast<std::size_t>(B_));
      for (int b = 0; b < B_; ++b) host_ids_[b] = t == 0 ? kPadId : bytes[b][t - 1];
      k_.upload(ids_.get(), host_ids_.data(), host_ids_.size() * sizeof(std::int32_t));
      m_.input_embeddings(in_.get(), ids_.get(), B_, t, 1);
      m_.stack_.step(out_.get(), in_.get(), cache_);
    }
    k_.head_logits(logits_.get(), out_.get(), m_.view_.value(m_.embedding_), B_, m_.D_,
                   kByteValues);
    return logits_.get();
  }

  std::size_t device_bytes() const override { return arena_.bytes(); }

 private:
  const ByteTransformerModel& m_;
  backend::Backend& k_;
  const int B_;
  backend::Arena arena_;
  TransformerStack::Cache cache_;
  Slice<float> logits_, in_, out_;
  Slice<std::int32_t> ids_;
  std::vector<std::int32_t> host_ids_;
};

std::unique_ptr<CachedDecoder> ByteTransformerModel::make_decoder(int batch) const {
  check_decodable(batch);
  return std::make_unique<ByteTransformerDecoder>(*this, batch);
}

}  // namespace

std::unique_ptr<Model> make_byte_transformer_model(const ModelConfig& config, int max_batch,
                                                   std::shared_ptr<backend::Backend> backend,
                                                   backend::Device device,
                                                   backend::Precision precision,
                                                   const ActivationPolicy& policy) {
  return std::make_unique<ByteTransformerModel>(config, max_batch, std::move(backend), device,
                                                precision, policy);
}

}  // namespace mb::model
