#include "model/transformer_stack.hpp"

#include <algorithm>
#include <stdexcept>

#include "core/rng.hpp"

namespace mb::model {

namespace {

void act_forward(backend::Backend& k, Activation a, float* out, const float* inp, const float* bias,
                 int N, int C) {
  if (a == Activation::relu)
    k.bias_relu_forward(out, inp, bias, N, C);
  else
    k.bias_gelu_forward(out, inp, bias, N, C);
}

}  // namespace

TransformerStack::TransformerStack(ParameterSet& params, const ParameterView& view,
                                   backend::Backend* backend, const std::string& prefix,
                                   const StackShape& shape, ParamGroup group)
    : view_(view), backend_(backend), shape_(shape) {
  const std::int64_t C = shape.width, H = shape.hidden;
  auto add = [&](const std::string& name, std::vector<std::int64_t> dims, ParamRole role) {
    return params.add(prefix + name, std::move(dims), role, group);
  };
  for (int l = 0; l < shape.layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    LayerTensors t{};
    t.ln1_w = add(p + "ln1.weight", {C}, ParamRole::norm_gain);
    t.ln1_b = add(p + "ln1.bias", {C}, ParamRole::bias);
    t.qkv_w = add(p + "attn.qkv.weight", {3 * C, C}, ParamRole::weight);
    t.qkv_b = add(p + "attn.qkv.bias", {3 * C}, ParamRole::bias);
    t.proj_w = add(p + "attn.proj.weight", {C, C}, ParamRole::weight);
    t.proj_b = add(p + "attn.proj.bias", {C}, ParamRole::bias);
    t.ln2_w = add(p + "ln2.weight", {C}, ParamRole::norm_gain);
    t.ln2_b = add(p + "ln2.bias", {C}, ParamRole::bias);
    t.fc_w = add(p + "ffn.fc.weight", {H, C}, ParamRole::weight);
    t.fc_b = add(p + "ffn.fc.bias", {H}, ParamRole::bias);
    t.fc2_w = add(p + "ffn.proj.weight", {C, H}, ParamRole::weight);
    t.fc2_b = add(p + "ffn.proj.bias", {C}, ParamRole::bias);
    layer_tensors_.push_back(t);
  }
  lnf_w_ = add("ln_f.weight", {C}, ParamRole::norm_gain);
  lnf_b_ = add("ln_f.bias", {C}, ParamRole::bias);
}

void TransformerStack::reserve(backend::Arena& arena, int max_rows, int length,
                               bool bf16_activations, bool recompute, bool inference_only) {
  if (max_rows % length != 0)
    throw std::logic_error("TransformerStack: rows not a multiple of length");
  // The bf16-only copies are read back by bf16 products alone: an fp32 backend would get null
  // fp32 operands.
  if (bf16_activations && backend_ && !backend::saves_bf16_activations(backend_->precision()))
    throw std::logic_error("TransformerStack: bf16 activations need a backend in bf16 precision");
  const std::size_t N = max_rows, C = shape_.width, H = shape_.hidden;
  bf16_activations_ = bf16_activations;
  recompute_ = recompute;
  inference_only_ = inference_only;
  auto floats = [&](std::size_t n) { return arena.reserve<float>(n); };
  if (inference_only) {  // infer()'s buffers: see infer()
    acts_.clear();
    final_input_ = floats(N * C);
    scratch_c_ = floats(N * C);
    scratch_c2_ = floats(N * C);
    scratch_3c_ = floats(N * 3 * C);
    scratch_h_ = floats(N * H);
    if (bf16_activations) infer_qkv_bf16_ = arena.reserve<std::uint16_t>(N * 3 * C);
    return;
  }
  // The activations that may be saved as bf16 copies: in bf16 or in fp32.
  auto maybe_bf16 = [&](backend::Slice<float>& fp32, backend::Slice<std::uint16_t>& bf16,
                        std::size_t n) {
    if (bf16_activations)
      bf16 = arena.reserve<std::uint16_t>(n);
    else
      fp32 = floats(n);
  };
  // What a layer's backward pass reads besides its input: in every layer's own buffers, or
  // with recomputation in one set that each layer's forward fills again.
  auto reserve_layer = [&](LayerActivations& a) {
    a.ln1_mean = floats(N);
    a.ln1_rstd = floats(N);
    maybe_bf16(a.qkv, a.qkv_bf16, N * 3 * C);
    maybe_bf16(a.att, a.att_bf16, N * C);
    a.lse = floats(N * shape_.heads);
    a.mid = floats(N * C);
    a.ln2_mean = floats(N);
    a.ln2_rstd = floats(N);
    // A ReLU's backward pass reads the activation's sign instead of the pre-activation.
    if (shape_.activation != Activation::relu) maybe_bf16(a.fc, a.fc_bf16, N * H);
    maybe_bf16(a.act, a.act_bf16, N * H);
  };
  acts_.assign(shape_.layers, LayerActivations{});
  for (LayerActivations& a : acts_) {
    a.input = floats(N * C);
    if (!recompute) reserve_layer(a);
  }
  if (recompute && shape_.layers > 0) reserve_layer(recomputed_);
  // infer() rounds q, k and v through the first layer's saved patterns (free in inference).
  if (shape_.layers > 0) infer_qkv_bf16_ = saved(0).qkv_bf16;
  final_input_ = floats(N * C);
  lnf_mean_ = floats(N);
  lnf_rstd_ = floats(N);
  scratch_c_ = floats(N * C);
  scratch_c2_ = floats(N * C);
  scratch_3c_ = floats(N * 3 * C);
  scratch_h_ = floats(N * H);
  scratch_h2_ = floats(N * H);
  if (bf16_activations) scratch_qkv_ = floats(N * 3 * C);
}

void TransformerStack::save_bf16(const ActivationBuffer& a, std::size_t n) const {
  if (a.bf16) backend_->to_bf16(a.bf16, a.values, n);
}

void TransformerStack::save_bf16_rounded(const ActivationBuffer& a, std::size_t n) const {
  if (!a.bf16) return;
  backend_->to_bf16(a.bf16, a.values, n);
  backend_->from_bf16(a.values, a.bf16, n);
}

backend::Operand TransformerStack::saved_operand(
    const backend::Slice<float>& saved, const backend::Slice<std::uint16_t>& saved_bf16) const {
  if (bf16_activations_) return backend::Operand::patterns(saved_bf16.get());
  return saved.get();
}

const float* TransformerStack::saved_fp32(const backend::Slice<float>& saved,
                                          const backend::Slice<std::uint16_t>& saved_bf16,
                                          const backend::Slice<float>& scratch, std::size_t n) {
  if (!bf16_activations_) return saved.get();
  backend_->from_bf16(scratch.get(), saved_bf16.get(), n);
  return scratch.get();
}

const float* TransformerStack::recompute_layernorm(const float* inp, std::size_t weight,
                                                   std::size_t bias, int N, int C) {
  // The statistics are saved already: the op is asked for its output only.
  backend_->layernorm_forward(scratch_c_.get(), nullptr, nullptr, inp, view_.value(weight),
                              view_.value(bias), N, C, shape_.layernorm_eps);
  return scratch_c_.get();
}

std::uint64_t TransformerStack::dropout_seed(std::uint64_t seed, int layer, int site) {
  // Each dropout site of a step gets its own mask stream.
  return splitmix64_mix(seed +
                        static_cast<std::uint64_t>(layer * 2 + site + 1) * 0xD1B54A32D192ED03ull);
}

template <class Attend>
void TransformerStack::block_forward(int layer, const BlockBuffers& b, int rows,
                                     const std::uint64_t* dropout, Attend&& attend) const {
  backend::Backend& k = *backend_;
  const LayerTensors& t = layer_tensors_[layer];
  const int N = rows, C = shape_.width, Hd = shape_.hidden;
  const std::size_t n = static_cast<std::size_t>(N) * C, nh = static_cast<std::size_t>(N) * Hd;
  const float eps = shape_.layernorm_eps, p = shape_.dropout;
  const auto product =
      b.step ? &backend::Backend::matmul_step_forward : &backend::Backend::matmul_forward;

  // a = x + Dropout(Proj(Attention(LN1(x)))). LN1's output is scratch: a backward pass
  // recomputes it (reserve()).
  k.layernorm_forward(b.ln, b.ln1_mean, b.ln1_rstd, b.input, view_.value(t.ln1_w),
                      view_.value(t.ln1_b), N, C, eps);
  (k.*product)(b.qkv.values, b.ln, view_.weight(t.qkv_w), view_.value(t.qkv_b), N, C, 3 * C);
  // With bf16 activations q, k and v are rounded to bf16, so that the attention reads what a
  // backward pass reads (and a KV cache keeps) of them.
  save_bf16_rounded(b.qkv, 3 * n);
  attend(b.att.values, b.qkv);
  save_bf16(b.att, n);
  // In place (the inference pass) a branch is added by its product (the same bits), without
  // writing the branch out and reading it back.
  const bool add_in_place = !dropout && !b.step && b.mid == b.input && b.output == b.mid;
  if (add_in_place) {
    k.matmul_residual_forward(b.mid, b.att.operand(), view_.weight(t.proj_w), view_.value(t.proj_b),
                              N, C, C);
  } else {
    (k.*product)(b.branch, b.att.operand(), view_.weight(t.proj_w), view_.value(t.proj_b), N, C, C);
    if (dropout)
      k.dropout_forward(b.branch, b.branch, n, p, dropout_seed(*dropout, layer, 0),
                        dropout_offset_);
    k.residual_forward(b.mid, b.input, b.branch, n);
  }

  // x = a + Dropout(FC2(Act(FC1(LN2(a))))). The activation reads the fp32 pre-activation,
  // whatever is saved of it.
  k.layernorm_forward(b.ln, b.ln2_mean, b.ln2_rstd, b.mid, view_.value(t.ln2_w),
                      view_.value(t.ln2_b), N, C, eps);
  if (shape_.activation == Activation::relu && !b.step) {
    k.matmul_bias_relu_forward(b.act.values, b.ln, view_.weight(t.fc_w), view_.value(t.fc_b), N, C,
                               Hd);
  } else {
    (k.*product)(b.fc.values, b.ln, view_.weight(t.fc_w), nullptr, N, C, Hd);
    save_bf16(b.fc, nh);
    act_forward(k, shape_.activation, b.act.values, b.fc.values, view_.value(t.fc_b), N, Hd);
  }
  save_bf16(b.act, nh);
  if (add_in_place) {
    k.matmul_residual_forward(b.output, b.act.operand(), view_.weight(t.fc2_w),
                              view_.value(t.fc2_b), N, Hd, C);
    return;
  }
  (k.*product)(b.branch, b.act.operand(), view_.weight(t.fc2_w), view_.value(t.fc2_b), N, Hd, C);
  if (dropout)
    k.dropout_forward(b.branch, b.branch, n, p, dropout_seed(*dropout, layer, 1), dropout_offset_);
  k.residual_forward(b.output, b.mid, b.branch, n);
}

void TransformerStack::forward(float* out, const float* in, int sequences, int length,
                               bool training, std::uint64_t seed, std::uint64_t first_row) {
  backend::Backend& k = *backend_;
  const int N = sequences * length, C = shape_.width;
  if (inference_only_)
    throw std::logic_error("TransformerStack::forward: the stack is reserved for infer() only");
  if (static_cast<std::size_t>(N) * C > final_input_.size())
    throw std::logic_error("TransformerStack::forward: more rows than reserved");
  sequences_ = sequences;
  length_ = length;
  training_ = training && shape_.dropout > 0.0f;
  seed_ = seed;
  dropout_offset_ = first_row * static_cast<std::uint64_t>(C);
  const std::size_t n = static_cast<std::size_t>(N) * C;

  const float* x = in;
  for (int l = 0; l < shape_.layers; ++l) {
    float* input = acts_[l].input.get();
    if (x != input) k.copy(input, x, n * sizeof(float));
    float* next = l + 1 < shape_.layers ? acts_[l + 1].input.get() : final_input_.get();
    saving_layer_forward(l, next);
    x = next;
  }
  if (shape_.layers == 0) k.copy(final_input_.get(), in, n * sizeof(float));
  k.layernorm_forward(out, lnf_mean_.get(), lnf_rstd_.get(), final_input_.get(),
                      view_.value(lnf_w_), view_.value(lnf_b_), N, C, shape_.layernorm_eps);
}

void TransformerStack::infer(float* out, const float* in, int sequences, int length) {
  backend::Backend& k = *backend_;
  const int N = sequences * length, C = shape_.width, heads = shape_.heads, d = C / heads;
  const std::size_t n = static_cast<std::size_t>(N) * C;
  if (n > final_input_.size())
    throw std::logic_error("TransformerStack::infer: more rows than reserved");
  // The residual stream in final_input_, each block in place on it. LN1's output and then the
  // attention's share scratch_c2_ (the product reads the one before the other is written); the
  // pre-activation and the activation share scratch_h_ (fused, or the activation in place).
  // With bf16 activations q, k and v are rounded as forward() rounds them, through a buffer of
  // their patterns (the first layer's saved set: nothing is saved here); the other bf16
  // copies forward() keeps are only read by bf16 products, which round the values anyway.
  float* x = final_input_.get();
  k.copy(x, in, n * sizeof(float));
  std::uint16_t* qkv_bf16 = bf16_activations_ ? infer_qkv_bf16_.get() : nullptr;
  const BlockBuffers b{x,
                       x,
                       x,
                       nullptr,
                       nullptr,
                       nullptr,
                       nullptr,
                       scratch_c2_.get(),
                       {scratch_3c_.get(), qkv_bf16},
                       {scratch_c2_.get(), nullptr},
                       {scratch_h_.get(), nullptr},
                       {scratch_h_.get(), nullptr},
                       scratch_c_.get()};
  for (int l = 0; l < shape_.layers; ++l)
    block_forward(l, b, N, nullptr, [&](float* att, const ActivationBuffer& qkv) {
      k.causal_attention_forward(att, nullptr, qkv.values, sequences, length, heads, d);
    });
  k.layernorm_forward(out, nullptr, nullptr, x, view_.value(lnf_w_), view_.value(lnf_b_), N, C,
                      shape_.layernorm_eps);
}

TransformerStack::LayerActivations& TransformerStack::saved(int layer) {
  return recompute_ ? recomputed_ : acts_[layer];
}

void TransformerStack::saving_layer_forward(int l, float* output) {
  backend::Backend& k = *backend_;
  const int N = sequences_ * length_, heads = shape_.heads, d = shape_.width / heads;
  LayerActivations& a = saved(l);
  // With bf16 activations, what is saved as bf16 only is written in fp32 to scratch free
  // during the forward pass: q, k, v to scratch_3c_, the attention's output where LN1's was
  // (consumed by then), the pre-activation and the activation to the two hidden scratches.
  auto kept = [&](const backend::Slice<float>& values, const backend::Slice<std::uint16_t>& bf16,
                  const backend::Slice<float>& scratch) {
    return bf16_activations_ ? ActivationBuffer{scratch.get(), bf16.get()}
                             : ActivationBuffer{values.get(), nullptr};
  };
  const BlockBuffers b{acts_[l].input.get(),
                       a.mid.get(),
                       output,
                       a.ln1_mean.get(),
                       a.ln1_rstd.get(),
                       a.ln2_mean.get(),
                       a.ln2_rstd.get(),
                       scratch_c2_.get(),
                       kept(a.qkv, a.qkv_bf16, scratch_3c_),
                       kept(a.att, a.att_bf16, scratch_c2_),
                       kept(a.fc, a.fc_bf16, scratch_h2_),
                       kept(a.act, a.act_bf16, scratch_h_),
                       scratch_c_.get()};
  block_forward(
      l, b, N, training_ ? &seed_ : nullptr, [&](float* att, const ActivationBuffer& qkv) {
        k.causal_attention_forward(att, a.lse.get(), qkv.values, sequences_, length_, heads, d);
      });
}

TransformerStack::Cache TransformerStack::reserve_cache(backend::Arena& arena, int batch,
                                                        int capacity, bool bf16_activations) const {
  Cache c;
  c.batch_ = batch;
  c.capacity_ = capacity;
  c.bf16_activations_ = bf16_activations;
  const std::size_t rows = static_cast<std::size_t>(batch), C = shape_.width;
  const std::size_t cache = rows * capacity * C;
  for (int l = 0; l < shape_.layers; ++l) {
    Cache::Layer L;
    if (bf16_activations) {
      L.keys_bf16 = arena.reserve<std::uint16_t>(cache);
      L.values_bf16 = arena.reserve<std::uint16_t>(cache);
    } else {
      L.keys = arena.reserve<float>(cache);
      L.values = arena.reserve<float>(cache);
    }
    c.layers_.push_back(L);
  }
  c.x_ = arena.reserve<float>(rows * C);
  c.ln_ = arena.reserve<float>(rows * C);
  c.qkv_ = arena.reserve<float>(rows * 3 * C);
  c.att_ = arena.reserve<float>(rows * C);
  c.branch_ = arena.reserve<float>(rows * C);
  c.fc_ = arena.reserve<float>(rows * shape_.hidden);
  c.scores_ = arena.reserve<float>(rows * shape_.heads * capacity);
  if (bf16_activations) c.qkv_bf16_ = arena.reserve<std::uint16_t>(rows * 3 * C);
  return c;
}

void TransformerStack::step(float* out, const float* in, Cache& c) const {
  if (c.length_ >= c.capacity_) throw std::logic_error("TransformerStack::step: cache full");
  backend::Backend& k = *backend_;
  const int B = c.batch_, C = shape_.width, heads = shape_.heads, d = C / heads;
  const std::size_t n = static_cast<std::size_t>(B) * C;
  const std::size_t cache = static_cast<std::size_t>(c.capacity_) * C;
  const std::size_t at = static_cast<std::size_t>(c.length_) * C;
  const std::size_t q_stride = 3 * static_cast<std::size_t>(C);
  k.copy(c.x_.get(), in, n * sizeof(float));
  // The block in place on x, keeping nothing for a backward pass: the pre-activation and the
  // activation share fc_, and nothing but q, k and v (which the caches keep) is saved as bf16.
  const ActivationBuffer none_qkv{c.qkv_.get(), c.bf16_activations_ ? c.qkv_bf16_.get() : nullptr};
  const BlockBuffers b{c.x_.get(),
                       c.x_.get(),
                       c.x_.get(),
                       nullptr,
                       nullptr,
                       nullptr,
                       nullptr,
                       c.ln_.get(),
                       none_qkv,
                       {c.att_.get(), nullptr},
                       {c.fc_.get(), nullptr},
                       {c.fc_.get(), nullptr},
                       c.branch_.get(),
                       /*step=*/true};
  for (int l = 0; l < shape_.layers; ++l) {
    Cache::Layer& L = c.layers_[l];
    block_forward(l, b, B, nullptr, [&](float* att, const ActivationBuffer& qkv) {
      // Every sequence's k and v join its caches (row i of qkv into cache i), as the values
      // or the bf16 patterns the attention reads; then one step attends for all of them.
      if (qkv.bf16) {
        const std::size_t half = sizeof(std::uint16_t);
        k.copy_rows(L.keys_bf16.get() + at, cache * half, qkv.bf16 + C, q_stride * half, C * half,
                    B);
        k.copy_rows(L.values_bf16.get() + at, cache * half, qkv.bf16 + 2 * C, q_stride * half,
                    C * half, B);
        k.attention_step(att, c.scores_.get(), qkv.values,
                         backend::Operand::patterns(L.keys_bf16.get()),
                         backend::Operand::patterns(L.values_bf16.get()), B, c.length_ + 1, heads,
                         d, q_stride, C, cache);
      } else {
        const std::size_t f = sizeof(float);
        k.copy_rows(L.keys.get() + at, cache * f, qkv.values + C, q_stride * f, C * f, B);
        k.copy_rows(L.values.get() + at, cache * f, qkv.values + 2 * C, q_stride * f, C * f, B);
        k.attention_step(att, c.scores_.get(), qkv.values, L.keys.get(), L.values.get(), B,
                         c.length_ + 1, heads, d, q_stride, C, cache);
      }
    });
  }
  k.layernorm_forward(out, nullptr, nullptr, c.x_.get(), view_.value(lnf_w_), view_.value(lnf_b_),
                      B, C, shape_.layernorm_eps);
  ++c.length_;
}

void TransformerStack::backward(float* din, const float* dout) {
  backend::Backend& k = *backend_;
  const int N = sequences_ * length_, C = shape_.width, Hd = shape_.hidden;
  const int heads = shape_.heads, d = C / heads;
  const std::size_t n = static_cast<std::size_t>(N) * C;
  const float p = shape_.dropout;
  if (inference_only_)
    throw std::logic_error("TransformerStack::backward: the stack is reserved for infer() only");

  // din is the running gradient of the residual stream, from the top down.
  k.zero(din, n * sizeof(float));
  k.layernorm_backward(din, view_.grad(lnf_w_), view_.grad(lnf_b_), dout, final_input_.get(),
                       view_.value(lnf_w_), lnf_mean_.get(), lnf_rstd_.get(), N, C);

  for (int l = shape_.layers - 1; l >= 0; --l) {
    const LayerTensors& t = layer_tensors_[l];
    // With recomputation the layer's forward runs again from its saved input: the same ops on
    // the same values, so the same bits as the forward pass saved without it. The top layer's
    // are still there from the forward pass. Its output goes to scratch_c_ (the branch it is
    // summed from), free at this point; the next layer's saved input is not touched.
    if (recompute_ && l + 1 < shape_.layers) saving_layer_forward(l, scratch_c_.get());
    LayerActivations& a = saved(l);
    const float* input = acts_[l].input.get();

    // Feed-forward branch: next = mid + Dropout(FC2(Act(FC1(LN2(mid))))).
    const float* dbranch = din;
    if (training_) {
      k.dropout_backward(scratch_c_.get(), din, n, p, dropout_seed(seed_, l, 1), dropout_offset_);
      dbranch = scratch_c_.get();
    }
    // The dropout's, the products', the activation's and the attention's backward write their
    // input gradients over the buffers (backend.hpp): none is zeroed first. The saved inputs of
    // the products: fp32, or (bf16 activations) only their bf16 copies.
    k.matmul_backward(scratch_h_.get(), view_.grad(t.fc2_w), view_.grad(t.fc2_b), dbranch,
                      saved_operand(a.act, a.act_bf16), view_.weight(t.fc2_w), N, Hd, C);
    // GELU's derivative at the saved pre-activation (fp32, or its bf16 copy read at the
    // rounded value); ReLU's at the saved activation with no bias: act > 0 exactly where
    // pre-activation + bias > 0 (act is that sum where positive), so the forward keeps no
    // pre-activation (matmul_bias_relu_forward writes act alone).
    if (shape_.activation == Activation::relu)
      k.bias_relu_backward(scratch_h2_.get(), view_.grad(t.fc_b), scratch_h_.get(),
                           saved_operand(a.act, a.act_bf16), nullptr, N, Hd);
    else
      k.bias_gelu_backward(scratch_h2_.get(), view_.grad(t.fc_b), scratch_h_.get(),
                           saved_operand(a.fc, a.fc_bf16), view_.value(t.fc_b), N, Hd);
    // LN2's output again, for FC1's weight gradient: the forward's bits (the same op on the
    // same input), into scratch_c_ (dbranch is consumed).
    const float* ln2 = recompute_layernorm(a.mid.get(), t.ln2_w, t.ln2_b, N, C);
    k.matmul_backward(scratch_c2_.get(), view_.grad(t.fc_w), nullptr, scratch_h2_.get(), ln2,
                      view_.weight(t.fc_w), N, C, Hd);
    // d mid = d next (the residual path, already in din) + the norm's backward.
    k.layernorm_backward(din, view_.grad(t.ln2_w), view_.grad(t.ln2_b), scratch_c2_.get(),
                         a.mid.get(), view_.value(t.ln2_w), a.ln2_mean.get(), a.ln2_rstd.get(), N,
                         C);

    // Attention branch: mid = input + Dropout(Proj(Attention(LN1(input)))).
    dbranch = din;
    if (training_) {
      k.dropout_backward(scratch_c_.get(), din, n, p, dropout_seed(seed_, l, 0), dropout_offset_);
      dbranch = scratch_c_.get();
    }
    k.matmul_backward(scratch_c2_.get(), view_.grad(t.proj_w), view_.grad(t.proj_b), dbranch,
                      saved_operand(a.att, a.att_bf16), view_.weight(t.proj_w), N, C, C);
    // The attention's saved output and inputs in fp32 (scratch_c_ is free once the product's
    // backward has read dbranch).
    const float* att = saved_fp32(a.att, a.att_bf16, scratch_c_, n);
    const float* qkv = saved_fp32(a.qkv, a.qkv_bf16, scratch_qkv_, 3 * n);
    k.causal_attention_backward(scratch_3c_.get(), scratch_c2_.get(), att, a.lse.get(), qkv,
                                sequences_, length_, heads, d);
    // LN1's output again (scratch_c_ held the widened attention output, consumed by now).
    const float* ln1 = recompute_layernorm(input, t.ln1_w, t.ln1_b, N, C);
    k.matmul_backward(scratch_c2_.get(), view_.grad(t.qkv_w), view_.grad(t.qkv_b),
                      scratch_3c_.get(), ln1, view_.weight(t.qkv_w), N, C, 3 * C);
    k.layernorm_backward(din, view_.grad(t.ln1_w), view_.grad(t.ln1_b), scratch_c2_.get(), input,
                         view_.value(t.ln1_w), a.ln1_mean.get(), a.ln1_rstd.get(), N, C);
  }
}

}  // namespace mb::model
