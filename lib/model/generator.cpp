#include "model/generator.hpp"

#include <algorithm>
#include <string>

#include "core/error.hpp"
#include "cpu/activation.hpp"
#include "cpu/attention_step.hpp"
#include "cpu/layernorm.hpp"
#include "cpu/matmul.hpp"
#include "cpu/residual.hpp"

namespace mb::model {

namespace k = mb::kernels::cpu;

namespace {

// A tensor of the model by its checkpoint name, checked against the shape the generator
// assumes: a model whose tables disagree with its config is a bug, not a user error.
const float* tensor(const ParameterSet& ps, const std::string& name,
                    const std::vector<std::int64_t>& shape) {
  const ParamInfo* info = ps.find(name);
  if (!info) throw std::logic_error("Generator: the model has no tensor " + name);
  if (info->shape != shape) throw std::logic_error("Generator: tensor " + name + " has another shape");
  return ps.values().data() + info->offset;
}

// One transformer stack (transformer_stack.hpp) run one position at a time. Each layer keeps the
// keys and values of the positions run so far; a step computes the new position's q, k, v,
// appends k and v, and attends over the cache (itself included), which is causal attention.
class CachedStack {
 public:
  CachedStack(const ParameterSet& ps, const std::string& prefix, int width, const StackConfig& s,
              const ModelConfig& c, int capacity)
      : C_(width), hidden_(c.ffn_multiplier * width), heads_(s.heads), capacity_(capacity),
        activation_(c.activation), eps_(c.layernorm_eps) {
    const std::int64_t C = C_, H = hidden_;
    for (int l = 0; l < s.layers; ++l) {
      const std::string p = prefix + "layers." + std::to_string(l) + ".";
      Layer L;
      L.ln1_w = tensor(ps, p + "ln1.weight", {C});
      L.ln1_b = tensor(ps, p + "ln1.bias", {C});
      L.qkv_w = tensor(ps, p + "attn.qkv.weight", {3 * C, C});
      L.qkv_b = tensor(ps, p + "attn.qkv.bias", {3 * C});
      L.proj_w = tensor(ps, p + "attn.proj.weight", {C, C});
      L.proj_b = tensor(ps, p + "attn.proj.bias", {C});
      L.ln2_w = tensor(ps, p + "ln2.weight", {C});
      L.ln2_b = tensor(ps, p + "ln2.bias", {C});
      L.fc_w = tensor(ps, p + "ffn.fc.weight", {H, C});
      L.fc_b = tensor(ps, p + "ffn.fc.bias", {H});
      L.fc2_w = tensor(ps, p + "ffn.proj.weight", {C, H});
      L.fc2_b = tensor(ps, p + "ffn.proj.bias", {C});
      L.keys.resize(static_cast<std::size_t>(capacity) * C_);
      L.values.resize(static_cast<std::size_t>(capacity) * C_);
      layers_.push_back(std::move(L));
    }
    lnf_w_ = tensor(ps, prefix + "ln_f.weight", {C});
    lnf_b_ = tensor(ps, prefix + "ln_f.bias", {C});
    x_.resize(C_);
    ln_.resize(C_);
    qkv_.resize(3 * static_cast<std::size_t>(C_));
    att_.resize(C_);
    branch_.resize(C_);
    fc_.resize(hidden_);
    scores_.resize(static_cast<std::size_t>(heads_) * capacity);
  }

  void reset() { length_ = 0; }
  int length() const { return length_; }

  // out[C] = the stack's output at position length() of its sequence, given that position's
  // input in[C]; the position joins the cache.
  void step(float* out, const float* in) {
    if (length_ >= capacity_) throw std::logic_error("CachedStack: cache full");
    const int C = C_, d = C_ / heads_;
    const std::size_t row = static_cast<std::size_t>(length_) * C;
    std::copy_n(in, C, x_.data());
    for (Layer& L : layers_) {
      // a = x + Proj(Attention(LN1(x)))
      k::layernorm_forward(ln_.data(), nullptr, nullptr, x_.data(), L.ln1_w, L.ln1_b, 1, C, eps_);
      k::matmul_forward(qkv_.data(), ln_.data(), L.qkv_w, L.qkv_b, 1, C, 3 * C);
      std::copy_n(qkv_.data() + C, C, L.keys.data() + row);
      std::copy_n(qkv_.data() + 2 * C, C, L.values.data() + row);
      k::attention_step(att_.data(), scores_.data(), qkv_.data(), L.keys.data(), L.values.data(),
                        length_ + 1, heads_, d, static_cast<std::size_t>(C));
      k::matmul_forward(branch_.data(), att_.data(), L.proj_w, L.proj_b, 1, C, C);
      k::residual_forward(x_.data(), x_.data(), branch_.data(), C);
      // x = a + FC2(Act(FC1(LN2(a))))
      k::layernorm_forward(ln_.data(), nullptr, nullptr, x_.data(), L.ln2_w, L.ln2_b, 1, C, eps_);
      k::matmul_forward(fc_.data(), ln_.data(), L.fc_w, nullptr, 1, C, hidden_);
      if (activation_ == Activation::relu)
        k::bias_relu_forward(fc_.data(), fc_.data(), L.fc_b, 1, hidden_);
      else
        k::bias_gelu_forward(fc_.data(), fc_.data(), L.fc_b, 1, hidden_);
      k::matmul_forward(branch_.data(), fc_.data(), L.fc2_w, L.fc2_b, 1, hidden_, C);
      k::residual_forward(x_.data(), x_.data(), branch_.data(), C);
    }
    k::layernorm_forward(out, nullptr, nullptr, x_.data(), lnf_w_, lnf_b_, 1, C, eps_);
    ++length_;
  }

 private:
  struct Layer {
    const float *ln1_w, *ln1_b, *qkv_w, *qkv_b, *proj_w, *proj_b, *ln2_w, *ln2_b, *fc_w, *fc_b,
        *fc2_w, *fc2_b;
    std::vector<float> keys, values;   // [capacity, C] each: the cache
  };

  const int C_, hidden_, heads_, capacity_;
  const Activation activation_;
  const float eps_;
  std::vector<Layer> layers_;
  const float *lnf_w_ = nullptr, *lnf_b_ = nullptr;
  std::vector<float> x_, ln_, qkv_, att_, branch_, fc_, scores_;
  int length_ = 0;
};

}  // namespace

// What both kinds share: the bytes fed, the logits buffer and the checks of the context.
struct Generator::Impl {
  explicit Impl(int context) : T(context) { bytes.reserve(context); }
  virtual ~Impl() = default;
  virtual void reset_caches() = 0;
  // Fills `logits` for position bytes.size() (< T).
  virtual void compute_logits() = 0;

  const int T;
  std::vector<std::uint8_t> bytes;
  float logits[kByteValues] = {};
  int logits_position = -1;   // the position `logits` holds, -1 if none
};

namespace {

// MEGABYTE, equations (1)-(6) of megabyte.cpp, one patch and one byte at a time.
class MegabyteGenerator final : public Generator::Impl {
 public:
  MegabyteGenerator(const ParameterSet& ps, const ModelConfig& c)
      : Impl(c.context), P_(c.patch_size), DG_(c.global.dim), DL_(c.local.dim),
        global_embedding_(tensor(ps, "global.byte_embedding", {kEmbeddingRows, DG_})),
        global_position_(tensor(ps, "global.position_embedding", {T, DG_})),
        global_pad_(tensor(ps, "global.pad_patch", {std::int64_t{P_} * DG_})),
        global_to_local_(tensor(ps, "local.global_projection.weight", {DL_, DG_})),
        local_embedding_(tensor(ps, "local.byte_embedding", {kEmbeddingRows, DL_})),
        global_(ps, "global.", P_ * DG_, c.global, c, c.patches()),
        local_(ps, "local.", DL_, c.local, c, P_),
        global_in_(static_cast<std::size_t>(P_) * DG_), global_out_(global_in_.size()),
        slices_(static_cast<std::size_t>(P_) * DL_), local_in_(DL_), local_out_(DL_) {}

  void reset_caches() override {
    global_.reset();
    local_.reset();
    patch_ = -1;
  }

  void compute_logits() override {
    const int n = static_cast<int>(bytes.size()), kp = n / P_, p = n % P_;
    // (1)-(3): the global steps of every patch up to this one; the cache makes each one step.
    // The last one run is patch kp's, since no earlier call ran past the patch of its position.
    while (global_.length() <= kp) global_step(global_.length());
    if (patch_ != kp) {
      // (4), first half: the P slices of patch kp's global output, each mapped to D_L, once.
      k::matmul_forward(slices_.data(), global_out_.data(), global_to_local_, nullptr, P_, DG_, DL_);
      local_.reset();
      patch_ = kp;
    }
    // (4), (5): local positions of this patch up to p; each input needs only bytes < n.
    while (local_.length() <= p) {
      const int q = local_.length();
      const int prev = q == 0 ? kPadId : bytes[static_cast<std::size_t>(kp) * P_ + q - 1];
      k::residual_forward(local_in_.data(), slices_.data() + static_cast<std::size_t>(q) * DL_,
                          local_embedding_ + static_cast<std::size_t>(prev) * DL_, DL_);
      local_.step(local_out_.data(), local_in_.data());
    }
    // (6): the tied head.
    k::matmul_forward(logits, local_out_.data(), local_embedding_, nullptr, 1, DL_, kByteValues);
  }

 private:
  // (1), (2): patch j's global input is the pad patch, or the embeddings of patch j-1's bytes
  // side by side; (3): one step of the global stack.
  void global_step(int j) {
    if (j == 0) {
      std::copy_n(global_pad_, global_in_.size(), global_in_.begin());
    } else {
      for (int i = 0; i < P_; ++i) {
        const std::size_t t = static_cast<std::size_t>(j - 1) * P_ + i;
        k::residual_forward(global_in_.data() + static_cast<std::size_t>(i) * DG_,
                            global_embedding_ + static_cast<std::size_t>(bytes[t]) * DG_,
                            global_position_ + t * DG_, DG_);
      }
    }
    global_.step(global_out_.data(), global_in_.data());
  }

  const int P_, DG_, DL_;
  const float *global_embedding_, *global_position_, *global_pad_, *global_to_local_,
      *local_embedding_;
  CachedStack global_, local_;
  std::vector<float> global_in_, global_out_, slices_, local_in_, local_out_;
  int patch_ = -1;   // the patch whose slices_ and local cache are current
};

// The byte transformer: h_in[t] = E[x_{t-1}] + E_pos[t] (E[pad] at t = 0), one step per byte.
class TransformerGenerator final : public Generator::Impl {
 public:
  TransformerGenerator(const ParameterSet& ps, const ModelConfig& c)
      : Impl(c.context), D_(c.global.dim),
        embedding_(tensor(ps, "byte_embedding", {kEmbeddingRows, D_})),
        position_(tensor(ps, "position_embedding", {T, D_})),
        stack_(ps, "", D_, c.global, c, T), in_(D_), out_(D_) {}

  void reset_caches() override { stack_.reset(); }

  void compute_logits() override {
    const int n = static_cast<int>(bytes.size());
    while (stack_.length() <= n) {
      const int t = stack_.length();
      const int prev = t == 0 ? kPadId : bytes[t - 1];
      k::residual_forward(in_.data(), embedding_ + static_cast<std::size_t>(prev) * D_,
                          position_ + static_cast<std::size_t>(t) * D_, D_);
      stack_.step(out_.data(), in_.data());
    }
    k::matmul_forward(logits, out_.data(), embedding_, nullptr, 1, D_, kByteValues);
  }

 private:
  const int D_;
  const float *embedding_, *position_;
  CachedStack stack_;
  std::vector<float> in_, out_;
};

}  // namespace

Generator::Generator(const Model& model) {
  const ParameterSet& ps = model.parameters();
  if (ps.values().size() < ps.buffer_size() || ps.buffer_size() == 0)
    throw std::logic_error("Generator: the model's parameters are not allocated");
  const ModelConfig& c = model.config();
  if (c.kind == ModelKind::megabyte) impl_ = std::make_unique<MegabyteGenerator>(ps, c);
  else impl_ = std::make_unique<TransformerGenerator>(ps, c);
}

Generator::~Generator() = default;
Generator::Generator(Generator&&) noexcept = default;
Generator& Generator::operator=(Generator&&) noexcept = default;

void Generator::reset() {
  impl_->bytes.clear();
  impl_->logits_position = -1;
  impl_->reset_caches();
}

void Generator::feed(std::uint8_t byte) {
  if (position() >= impl_->T)
    throw Error("generation", "the context of " + std::to_string(impl_->T) + " bytes is full",
                "the model sees at most model.context bytes: generate fewer");
  impl_->bytes.push_back(byte);
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
  return impl_->logits;
}

int Generator::position() const { return static_cast<int>(impl_->bytes.size()); }
int Generator::context() const { return impl_->T; }
const std::vector<std::uint8_t>& Generator::bytes() const { return impl_->bytes; }

}  // namespace mb::model
