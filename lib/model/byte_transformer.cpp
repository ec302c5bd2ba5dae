// The paper's baseline: a decoder-only transformer over the bytes themselves.
//   h_in[t] = E[x_{t-1}] + E_pos[t]   (E[pad] at t = 0)
//   p(x_t)  = softmax(transformer(h_in)[t] · E[0:256]ᵀ)   (tied output head)
// It is MEGABYTE's global model with P = 1 and no local model.
#include <algorithm>

#include "cpu/crossentropy.hpp"
#include "cpu/embedding.hpp"
#include "cpu/matmul.hpp"
#include "cpu/residual.hpp"
#include "model/model.hpp"
#include "model/transformer_stack.hpp"

namespace mb::model {

namespace k = mb::kernels::cpu;

namespace {

class ByteTransformerModel final : public Model {
 public:
  ByteTransformerModel(const ModelConfig& c, int max_batch)
      : Model(c, max_batch),
        T_(c.context), D_(c.global.dim),
        embedding_(params_.add("byte_embedding", {kEmbeddingRows, D_}, ParamRole::weight,
                               ParamGroup::embedding)),
        position_(params_.add("position_embedding", {T_, D_}, ParamRole::weight,
                              ParamGroup::embedding)),
        stack_(params_, "",
               StackShape{c.global.layers, D_, c.global.heads, c.ffn_multiplier * D_,
                          c.activation, c.dropout, c.layernorm_eps},
               ParamGroup::global) {
    if (max_batch == 0) return;   // a description of the parameters only
    params_.allocate();
    const std::size_t rows = static_cast<std::size_t>(max_batch) * T_;
    stack_.reserve(max_batch * T_, T_);
    inputs_.resize(rows);
    targets_.resize(rows);
    losses_.resize(rows);
    in_.resize(rows * D_);
    out_.resize(rows * D_);
    dout_.resize(rows * D_);
    din_.resize(rows * D_);
  }

  LossSum forward(const std::int32_t* ids, int batch, bool training,
                  std::uint64_t dropout_seed) override {
    if (batch < 1 || batch > max_batch_) throw std::logic_error("ByteTransformerModel: bad batch size");
    batch_ = batch;
    const int N = batch * T_;
    // The input at t is the byte before it: shift right by one, a pad first.
    for (int n = 0; n < N; ++n) inputs_[n] = n % T_ == 0 ? kPadId : ids[n - 1];
    k::embedding_forward(in_.data(), inputs_.data(), params_.value(embedding_), N, D_,
                         kEmbeddingRows);
    for (int b = 0; b < batch; ++b) {
      float* row = in_.data() + static_cast<std::size_t>(b) * T_ * D_;
      k::residual_forward(row, row, params_.value(position_), static_cast<std::size_t>(T_) * D_);
    }
    stack_.forward(out_.data(), in_.data(), batch, T_, training, dropout_seed);
    targets_from_ids(targets_.data(), ids, static_cast<std::size_t>(N));
    if (training) return {0.0, k::crossentropy_count(targets_.data(), N)};
    const k::CrossEntropySum ce = k::crossentropy_forward(
        losses_.data(), out_.data(), params_.value(embedding_), targets_.data(), N, D_, kByteValues);
    return {ce.loss, ce.count};
  }

  LossSum backward(float dloss) override {
    const int N = batch_ * T_;
    std::fill_n(dout_.begin(), static_cast<std::size_t>(N) * D_, 0.0f);
    const k::CrossEntropySum ce = k::crossentropy_backward(
        dout_.data(), params_.grad(embedding_), out_.data(), params_.value(embedding_),
        targets_.data(), dloss, N, D_, kByteValues);
    stack_.backward(din_.data(), dout_.data());
    k::embedding_backward(params_.grad(embedding_), din_.data(), inputs_.data(), N, D_,
                          kEmbeddingRows);
    for (int b = 0; b < batch_; ++b)
      k::residual_backward(params_.grad(position_), nullptr,
                           din_.data() + static_cast<std::size_t>(b) * T_ * D_,
                           static_cast<std::size_t>(T_) * D_);
    return {ce.loss, ce.count};
  }

  void logits(float* out, const std::int32_t* ids, int batch) override {
    forward(ids, batch, false, 0);
    k::matmul_forward(out, out_.data(), params_.value(embedding_), nullptr, batch * T_, D_,
                      kByteValues);
  }

  std::size_t activation_floats() const override {
    const std::size_t rows = static_cast<std::size_t>(max_batch_) * T_;
    return rows * (stack_.floats_per_row() + 4 * D_ + 2);
  }

 private:
  const int T_, D_;
  const std::size_t embedding_, position_;
  TransformerStack stack_;
  int batch_ = 0;
  std::vector<std::int32_t> inputs_, targets_;
  std::vector<float> in_, out_, dout_, din_;
};

}  // namespace

std::unique_ptr<Model> make_byte_transformer_model(const ModelConfig& config, int max_batch) {
  return std::make_unique<ByteTransformerModel>(config, max_batch);
}

}  // namespace mb::model
