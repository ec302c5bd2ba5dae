#include "model/generator.hpp"

#include <algorithm>
#include <string>

#include "backend/arena.hpp"
#include "backend/backend.hpp"
#include "core/error.hpp"

namespace mb::model {

namespace {

using backend::Slice;

// A tensor of the model by its checkpoint name, where the kernels find it, checked against the
// shape the generator assumes: a model whose tables disagree with its config is a bug, not a
// user error.
const float* tensor(const Model& m, const std::string& name, const std::vector<std::int64_t>& shape) {
  const ParamInfo* info = m.parameters().find(name);
  if (!info) throw std::logic_error("Generator: the model has no tensor " + name);
  if (info->shape != shape) throw std::logic_error("Generator: tensor " + name + " has another shape");
  return m.view().values + info->offset;
}

// A weight matrix of the model: its values (tensor()) and its bf16 copy, where the model keeps
// one (ParameterView::values_bf16; null otherwise), for the matrix products.
struct Weight {
  const float* values = nullptr;
  const std::uint16_t* bf16 = nullptr;
};

Weight weight(const Model& m, const std::string& name, const std::vector<std::int64_t>& shape) {
  const float* values = tensor(m, name, shape);
  const std::uint16_t* copy = m.view().values_bf16;
  return {values, copy ? copy + (values - m.view().values) : nullptr};
}

// One transformer stack (transformer_stack.hpp) run one position at a time for B sequences side
// by side. Each layer keeps the keys and values of the positions run so far ([B, capacity, C]
// each); a step computes the new position's q, k, v, appends k and v, and attends over the cache
// (itself included), which is causal attention.
class CachedStack {
 public:
  CachedStack(const Model& m, backend::Arena& arena, const std::string& prefix, int width,
              const StackConfig& s, int batch, int capacity)
      : C_(width), hidden_(m.config().ffn_multiplier * width), heads_(s.heads), B_(batch),
        capacity_(capacity), activation_(m.config().activation), eps_(m.config().layernorm_eps),
        round_qkv_(m.bf16_activations()) {
    const std::int64_t C = C_, H = hidden_;
    const std::size_t rows = static_cast<std::size_t>(B_);
    for (int l = 0; l < s.layers; ++l) {
      const std::string p = prefix + "layers." + std::to_string(l) + ".";
      Layer L;
      L.ln1_w = tensor(m, p + "ln1.weight", {C});
      L.ln1_b = tensor(m, p + "ln1.bias", {C});
      L.qkv_w = weight(m, p + "attn.qkv.weight", {3 * C, C});
      L.qkv_b = tensor(m, p + "attn.qkv.bias", {3 * C});
      L.proj_w = weight(m, p + "attn.proj.weight", {C, C});
      L.proj_b = tensor(m, p + "attn.proj.bias", {C});
      L.ln2_w = tensor(m, p + "ln2.weight", {C});
      L.ln2_b = tensor(m, p + "ln2.bias", {C});
      L.fc_w = weight(m, p + "ffn.fc.weight", {H, C});
      L.fc_b = tensor(m, p + "ffn.fc.bias", {H});
      L.fc2_w = weight(m, p + "ffn.proj.weight", {C, H});
      L.fc2_b = tensor(m, p + "ffn.proj.bias", {C});
      // bf16: the caches keep k and v as the bf16 patterns they were rounded to, in half the
      // memory and with the same values (attention_step_bf16).
      if (round_qkv_) {
        L.keys_bf16 = arena.reserve<std::uint16_t>(rows * capacity * C_);
        L.values_bf16 = arena.reserve<std::uint16_t>(rows * capacity * C_);
      } else {
        L.keys = arena.reserve<float>(rows * capacity * C_);
        L.values = arena.reserve<float>(rows * capacity * C_);
      }
      layers_.push_back(L);
    }
    lnf_w_ = tensor(m, prefix + "ln_f.weight", {C});
    lnf_b_ = tensor(m, prefix + "ln_f.bias", {C});
    x_ = arena.reserve<float>(rows * C_);
    ln_ = arena.reserve<float>(rows * C_);
    qkv_ = arena.reserve<float>(rows * 3 * C_);
    att_ = arena.reserve<float>(rows * C_);
    branch_ = arena.reserve<float>(rows * C_);
    fc_ = arena.reserve<float>(rows * hidden_);
    scores_ = arena.reserve<float>(rows * heads_ * capacity);
    if (round_qkv_) qkv_bf16_ = arena.reserve<std::uint16_t>(rows * 3 * C_);
  }

  void reset() { length_ = 0; }
  int length() const { return length_; }

  // out[B, C] = the stack's output at position length() of each sequence, given that position's
  // inputs in[B, C]; the position joins the caches.
  void step(backend::Backend& k, float* out, const float* in) {
    if (length_ >= capacity_) throw std::logic_error("CachedStack: cache full");
    const int C = C_, d = C_ / heads_;
    const std::size_t n = static_cast<std::size_t>(B_) * C, row_bytes = C * sizeof(float);
    const std::size_t cache = static_cast<std::size_t>(capacity_) * C;
    k.copy(x_.get(), in, n * sizeof(float));
    for (Layer& L : layers_) {
      // a = x + Proj(Attention(LN1(x)))
      k.layernorm_forward(ln_.get(), nullptr, nullptr, x_.get(), L.ln1_w, L.ln1_b, B_, C, eps_);
      k.matmul_forward(qkv_.get(), ln_.get(), nullptr, L.qkv_w.values, L.qkv_w.bf16, L.qkv_b, B_, C,
                       3 * C);
      if (round_qkv_) {   // as the model's forward in bf16 (Model::bf16_activations())
        k.to_bf16(qkv_bf16_.get(), qkv_.get(), 3 * n);
        k.from_bf16(qkv_.get(), qkv_bf16_.get(), 3 * n);
      }
      // Every sequence's k and v join its caches (row b of qkv_ into cache b), then one step
      // attends for all of them.
      const std::size_t at = static_cast<std::size_t>(length_) * C, rows = B_;
      const std::size_t q_stride = 3 * static_cast<std::size_t>(C), stride = C;
      if (round_qkv_) {
        const std::size_t half = sizeof(std::uint16_t);
        k.copy_rows(L.keys_bf16.get() + at, cache * half, qkv_bf16_.get() + C, q_stride * half,
                    C * half, rows);
        k.copy_rows(L.values_bf16.get() + at, cache * half, qkv_bf16_.get() + 2 * C,
                    q_stride * half, C * half, rows);
        k.attention_step_bf16(att_.get(), scores_.get(), qkv_.get(), L.keys_bf16.get(),
                              L.values_bf16.get(), B_, length_ + 1, heads_, d, q_stride, stride,
                              cache);
      } else {
        k.copy_rows(L.keys.get() + at, cache * sizeof(float), qkv_.get() + C,
                    q_stride * sizeof(float), row_bytes, rows);
        k.copy_rows(L.values.get() + at, cache * sizeof(float), qkv_.get() + 2 * C,
                    q_stride * sizeof(float), row_bytes, rows);
        k.attention_step(att_.get(), scores_.get(), qkv_.get(), L.keys.get(), L.values.get(), B_,
                         length_ + 1, heads_, d, q_stride, stride, cache);
      }
      k.matmul_forward(branch_.get(), att_.get(), nullptr, L.proj_w.values, L.proj_w.bf16, L.proj_b, B_, C,
                       C);
      k.residual_forward(x_.get(), x_.get(), branch_.get(), n);
      // x = a + FC2(Act(FC1(LN2(a))))
      k.layernorm_forward(ln_.get(), nullptr, nullptr, x_.get(), L.ln2_w, L.ln2_b, B_, C, eps_);
      k.matmul_forward(fc_.get(), ln_.get(), nullptr, L.fc_w.values, L.fc_w.bf16, nullptr, B_, C, hidden_);
      if (activation_ == Activation::relu)
        k.bias_relu_forward(fc_.get(), fc_.get(), L.fc_b, B_, hidden_);
      else
        k.bias_gelu_forward(fc_.get(), fc_.get(), L.fc_b, B_, hidden_);
      k.matmul_forward(branch_.get(), fc_.get(), nullptr, L.fc2_w.values, L.fc2_w.bf16, L.fc2_b, B_,
                       hidden_, C);
      k.residual_forward(x_.get(), x_.get(), branch_.get(), n);
    }
    k.layernorm_forward(out, nullptr, nullptr, x_.get(), lnf_w_, lnf_b_, B_, C, eps_);
    ++length_;
  }

 private:
  struct Layer {
    const float *ln1_w, *ln1_b, *qkv_b, *proj_b, *ln2_w, *ln2_b, *fc_b, *fc2_b;
    Weight qkv_w, proj_w, fc_w, fc2_w;
    Slice<float> keys, values;   // [B, capacity, C] each: the caches (fp32 models)
    Slice<std::uint16_t> keys_bf16, values_bf16;   // the same as bf16 patterns (bf16 models)
  };

  const int C_, hidden_, heads_, B_, capacity_;
  const Activation activation_;
  const float eps_;
  const bool round_qkv_;   // bf16: q, k and v rounded to bf16, through qkv_bf16_
  std::vector<Layer> layers_;
  const float *lnf_w_ = nullptr, *lnf_b_ = nullptr;
  Slice<float> x_, ln_, qkv_, att_, branch_, fc_, scores_;
  Slice<std::uint16_t> qkv_bf16_;
  int length_ = 0;
};

}  // namespace

// What both kinds share: the bytes fed, the logits, the device buffers and the checks of the
// context.
struct Generator::Impl {
  Impl(const Model& m, int batch)
      : k(*m.backend()), T(m.config().context), B(batch),
        bytes(static_cast<std::size_t>(batch)), logits(static_cast<std::size_t>(batch) * kByteValues) {
    for (auto& b : bytes) b.reserve(T);
    device_logits = arena.reserve<float>(logits.size());
    ids = arena.reserve<std::int32_t>(static_cast<std::size_t>(batch) * std::max(1, m.config().patch_size));
  }
  virtual ~Impl() = default;
  virtual void reset_caches() = 0;
  // Fills `logits` for position n = bytes[0].size() (< T).
  virtual void compute_logits() = 0;

  // The byte at position t of every sequence, or kPadId for t < 0, as ids on the device.
  void upload_ids(const std::vector<std::int32_t>& host) {
    k.upload(ids.get(), host.data(), host.size() * sizeof(std::int32_t));
  }
  // logits (host) = h[B, D] · E[0:256]ᵀ (the tied head), in fp32 as the loss computes them.
  void head(const float* h, const float* E, int D) {
    k.head_logits(device_logits.get(), h, E, B, D, kByteValues);
    k.download(logits.data(), device_logits.get(), logits.size() * sizeof(float));
  }

  backend::Backend& k;
  const int T, B;
  std::vector<std::vector<std::uint8_t>> bytes;   // per sequence, all of one length
  std::vector<float> logits;                       // [B, 256], host
  int logits_position = -1;                        // the position `logits` holds, -1 if none
  backend::Arena arena;                            // committed by the kind's constructor
  Slice<float> device_logits;
  Slice<std::int32_t> ids;                         // [B·max(P, 1)]
  std::vector<std::int32_t> host_ids;
};

namespace {

// MEGABYTE, equations (1)-(6) of megabyte.cpp, one patch and one byte at a time.
class MegabyteGenerator final : public Generator::Impl {
 public:
  MegabyteGenerator(const Model& m, int batch)
      : Impl(m, batch), P_(m.config().patch_size), DG_(m.config().global.dim),
        DL_(m.config().local.dim),
        global_embedding_(tensor(m, "global.byte_embedding", {kEmbeddingRows, DG_})),
        global_position_(tensor(m, "global.position_embedding", {T, DG_})),
        global_pad_(tensor(m, "global.pad_patch", {std::int64_t{P_} * DG_})),
        global_to_local_(weight(m, "local.global_projection.weight", {DL_, DG_})),
        local_embedding_(tensor(m, "local.byte_embedding", {kEmbeddingRows, DL_})),
        global_(m, arena, "global.", P_ * DG_, m.config().global, batch, m.config().patches()),
        local_(m, arena, "local.", DL_, m.config().local, batch, P_) {
    const std::size_t rows = static_cast<std::size_t>(batch);
    global_in_ = arena.reserve<float>(rows * P_ * DG_);
    global_out_ = arena.reserve<float>(rows * P_ * DG_);
    slices_ = arena.reserve<float>(rows * P_ * DL_);
    local_in_ = arena.reserve<float>(rows * DL_);
    local_out_ = arena.reserve<float>(rows * DL_);
    arena.commit(k);
  }

  void reset_caches() override {
    global_.reset();
    local_.reset();
    patch_ = -1;
  }

  void compute_logits() override {
    const int n = static_cast<int>(bytes[0].size()), kp = n / P_, p = n % P_;
    // (1)-(3): the global steps of every patch up to this one; the cache makes each one step.
    // The last one run is patch kp's, since no earlier call ran past the patch of its position.
    while (global_.length() <= kp) global_step(global_.length());
    if (patch_ != kp) {
      // (4), first half: the P slices of patch kp's global output, each mapped to D_L, once:
      // global_out_ [B, P·D_G] is [B·P, D_G] rows.
      k.matmul_forward(slices_.get(), global_out_.get(), nullptr, global_to_local_.values,
                       global_to_local_.bf16, nullptr, B * P_, DG_, DL_);
      local_.reset();
      patch_ = kp;
    }
    // (4), (5): local positions of this patch up to p; each input needs only bytes < n.
    while (local_.length() <= p) {
      const int q = local_.length();
      host_ids.resize(static_cast<std::size_t>(B));
      for (int b = 0; b < B; ++b)
        host_ids[b] = q == 0 ? kPadId : bytes[b][static_cast<std::size_t>(kp) * P_ + q - 1];
      upload_ids(host_ids);
      k.embedding_forward(local_in_.get(), ids.get(), local_embedding_, B, DL_, kEmbeddingRows);
      for (int b = 0; b < B; ++b) {
        float* row = local_in_.get() + static_cast<std::size_t>(b) * DL_;
        k.residual_forward(row, row, slices_.get() + (static_cast<std::size_t>(b) * P_ + q) * DL_, DL_);
      }
      local_.step(k, local_out_.get(), local_in_.get());
    }
    // (6): the tied head.
    head(local_out_.get(), local_embedding_, DL_);
  }

 private:
  // (1), (2): patch j's global input is the pad patch, or the embeddings of patch j-1's bytes
  // side by side (plus their positions); (3): one step of the global stack.
  void global_step(int j) {
    const std::size_t patch = static_cast<std::size_t>(P_) * DG_;
    if (j == 0) {
      for (int b = 0; b < B; ++b)
        k.copy(global_in_.get() + b * patch, global_pad_, patch * sizeof(float));
    } else {
      host_ids.resize(static_cast<std::size_t>(B) * P_);
      for (int b = 0; b < B; ++b)
        for (int i = 0; i < P_; ++i)
          host_ids[static_cast<std::size_t>(b) * P_ + i] =
              bytes[b][static_cast<std::size_t>(j - 1) * P_ + i];
      upload_ids(host_ids);
      // Row b·P + i of [B·P, D_G] is byte i of sequence b's patch: [B, P·D_G] as the stack wants.
      k.embedding_forward(global_in_.get(), ids.get(), global_embedding_, B * P_, DG_, kEmbeddingRows);
      for (int b = 0; b < B; ++b)
        k.residual_forward(global_in_.get() + b * patch, global_in_.get() + b * patch,
                           global_position_ + static_cast<std::size_t>(j - 1) * patch, patch);
    }
    global_.step(k, global_out_.get(), global_in_.get());
  }

  const int P_, DG_, DL_;
  const float *global_embedding_, *global_position_, *global_pad_;
  Weight global_to_local_;
  const float* local_embedding_;
  CachedStack global_, local_;
  Slice<float> global_in_, global_out_, slices_, local_in_, local_out_;
  int patch_ = -1;   // the patch whose slices_ and local cache are current
};

// The byte transformer: h_in[t] = E[x_{t-1}] + E_pos[t] (E[pad] at t = 0), one step per byte.
class TransformerGenerator final : public Generator::Impl {
 public:
  TransformerGenerator(const Model& m, int batch)
      : Impl(m, batch), D_(m.config().global.dim),
        embedding_(tensor(m, "byte_embedding", {kEmbeddingRows, D_})),
        position_(tensor(m, "position_embedding", {T, D_})),
        stack_(m, arena, "", D_, m.config().global, batch, T) {
    in_ = arena.reserve<float>(static_cast<std::size_t>(batch) * D_);
    out_ = arena.reserve<float>(static_cast<std::size_t>(batch) * D_);
    arena.commit(k);
  }

  void reset_caches() override { stack_.reset(); }

  void compute_logits() override {
    const int n = static_cast<int>(bytes[0].size());
    while (stack_.length() <= n) {
      const int t = stack_.length();
      host_ids.resize(static_cast<std::size_t>(B));
      for (int b = 0; b < B; ++b) host_ids[b] = t == 0 ? kPadId : bytes[b][t - 1];
      upload_ids(host_ids);
      k.embedding_forward(in_.get(), ids.get(), embedding_, B, D_, kEmbeddingRows);
      for (int b = 0; b < B; ++b) {
        float* row = in_.get() + static_cast<std::size_t>(b) * D_;
        k.residual_forward(row, row, position_ + static_cast<std::size_t>(t) * D_, D_);
      }
      stack_.step(k, out_.get(), in_.get());
    }
    head(out_.get(), embedding_, D_);
  }

 private:
  const int D_;
  const float *embedding_, *position_;
  CachedStack stack_;
  Slice<float> in_, out_;
};

}  // namespace

Generator::Generator(const Model& model, int batch) {
  if (!model.backend() || !model.view().values)
    throw std::logic_error("Generator: the model's parameters are not allocated");
  if (batch < 1) throw std::logic_error("Generator: batch must be at least 1");
  if (model.config().kind == ModelKind::megabyte) impl_ = std::make_unique<MegabyteGenerator>(model, batch);
  else impl_ = std::make_unique<TransformerGenerator>(model, batch);
}

Generator::~Generator() = default;
Generator::Generator(Generator&&) noexcept = default;
Generator& Generator::operator=(Generator&&) noexcept = default;

void Generator::reset() {
  for (auto& b : impl_->bytes) b.clear();
  impl_->logits_position = -1;
  impl_->reset_caches();
}

namespace {

void check_room(int position, int T) {
  if (position >= T)
    throw Error("generation", "the context of " + std::to_string(T) + " bytes is full",
                "the model sees at most model.context bytes: generate fewer");
}

}  // namespace

void Generator::feed(std::uint8_t byte) {
  check_room(position(), impl_->T);
  for (auto& b : impl_->bytes) b.push_back(byte);
}

void Generator::feed_each(const std::uint8_t* bytes) {
  check_room(position(), impl_->T);
  for (int i = 0; i < impl_->B; ++i) impl_->bytes[i].push_back(bytes[i]);
}

const float* Generator::next_logits() {
  const int n = position();
  if (n >= impl_->T)
    throw Error("generation", "no byte can follow the " + std::to_string(impl_->T) +
                                  " bytes of a full context",
                "the model sees at most model.context bytes: generate fewer");
  if (impl_->logits_position != n) {
    impl_->compute_logits();
    impl_->logits_position = n;
  }
  return impl_->logits.data();
}

int Generator::batch() const { return impl_->B; }
int Generator::position() const { return static_cast<int>(impl_->bytes[0].size()); }
int Generator::context() const { return impl_->T; }
std::size_t Generator::device_bytes() const { return impl_->arena.bytes(); }
const std::vector<std::uint8_t>& Generator::bytes(int sequence) const {
  return impl_->bytes.at(static_cast<std::size_t>(sequence));
}

}  // namespace mb::model
