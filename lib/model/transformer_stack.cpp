#include "model/transformer_stack.hpp"

#include <algorithm>
#include <stdexcept>

#include "cpu/dropout.hpp"           // splitmix64_mix: the dropout seed of each site

namespace mb::model {

namespace {

void act_forward(backend::Backend& k, Activation a, float* out, const float* inp,
                 const float* bias, int N, int C) {
  if (a == Activation::relu) k.bias_relu_forward(out, inp, bias, N, C);
  else k.bias_gelu_forward(out, inp, bias, N, C);
}

void act_backward(backend::Backend& k, Activation a, float* dinp, float* dbias, const float* dout,
                  const float* inp, const std::uint16_t* inp_bf16, const float* bias, int N,
                  int C) {
  if (a == Activation::relu) k.bias_relu_backward(dinp, dbias, dout, inp, inp_bf16, bias, N, C);
  else k.bias_gelu_backward(dinp, dbias, dout, inp, inp_bf16, bias, N, C);
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
                               bool bf16_activations) {
  if (max_rows % length != 0) throw std::logic_error("TransformerStack: rows not a multiple of length");
  // The bf16-only copies are read back by bf16 products alone: an fp32 backend would get null
  // fp32 operands.
  if (bf16_activations && backend_ && backend_->precision() != backend::Precision::bf16)
    throw std::logic_error("TransformerStack: bf16 activations need a backend in bf16 precision");
  const std::size_t N = max_rows, C = shape_.width, H = shape_.hidden;
  bf16_activations_ = bf16_activations;
  auto floats = [&](std::size_t n) { return arena.reserve<float>(n); };
  // The activations that may be saved as bf16 copies: in bf16 or in fp32.
  auto maybe_bf16 = [&](backend::Slice<float>& fp32, backend::Slice<std::uint16_t>& bf16,
                        std::size_t n) {
    if (bf16_activations) bf16 = arena.reserve<std::uint16_t>(n);
    else fp32 = floats(n);
  };
  acts_.resize(shape_.layers);
  for (LayerActivations& a : acts_) {
    a.input = floats(N * C);
    a.ln1_mean = floats(N);
    a.ln1_rstd = floats(N);
    maybe_bf16(a.qkv, a.qkv_bf16, N * 3 * C);
    maybe_bf16(a.att, a.att_bf16, N * C);
    a.lse = floats(N * shape_.heads);
    a.mid = floats(N * C);
    a.ln2_mean = floats(N);
    a.ln2_rstd = floats(N);
    maybe_bf16(a.fc, a.fc_bf16, N * H);
    maybe_bf16(a.act, a.act_bf16, N * H);
  }
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

TransformerStack::SavedActivation TransformerStack::saved_activation(
    const backend::Slice<float>& saved, const backend::Slice<std::uint16_t>& saved_bf16,
    const backend::Slice<float>& scratch) const {
  if (bf16_activations_) return {scratch.get(), saved_bf16.get()};
  return {saved.get(), nullptr};
}

void TransformerStack::save_bf16(const SavedActivation& a, std::size_t n) {
  if (a.bf16) backend_->to_bf16(a.bf16, a.values, n);
}

void TransformerStack::save_bf16_rounded(const SavedActivation& a, std::size_t n) {
  if (!a.bf16) return;
  backend_->to_bf16(a.bf16, a.values, n);
  backend_->from_bf16(a.values, a.bf16, n);
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

bool takes_short_attention(backend::Backend& backend, int length, int d) {
  if (backend.precision() == backend::Precision::bf16 && backend.attention_bf16_supports(d) &&
      length >= kTensorCoreAttentionMinLength)
    return false;
  return backend.short_attention_fits(length, d);
}

bool TransformerStack::use_short_attention(int length, int d) const {
  return takes_short_attention(*backend_, length, d);
}

std::uint64_t TransformerStack::dropout_seed(int layer, int site) const {
  // Each dropout site of a step gets its own mask stream.
  return kernels::cpu::splitmix64_mix(seed_ + static_cast<std::uint64_t>(layer * 2 + site + 1) *
                                       0xD1B54A32D192ED03ull);
}

void TransformerStack::forward(float* out, const float* in, int sequences, int length,
                               bool training, std::uint64_t seed) {
  backend::Backend& k = *backend_;
  const int N = sequences * length, C = shape_.width, Hd = shape_.hidden;
  const int heads = shape_.heads, d = C / heads;
  if (static_cast<std::size_t>(N) * C > final_input_.size())
    throw std::logic_error("TransformerStack::forward: more rows than reserved");
  sequences_ = sequences;
  length_ = length;
  training_ = training && shape_.dropout > 0.0f;
  seed_ = seed;
  const std::size_t n = static_cast<std::size_t>(N) * C;
  const float eps = shape_.layernorm_eps;
  const float p = shape_.dropout;

  const float* x = in;
  for (int l = 0; l < shape_.layers; ++l) {
    const LayerTensors& t = layer_tensors_[l];
    LayerActivations& a = acts_[l];
    if (x != a.input.get()) k.copy(a.input.get(), x, n * sizeof(float));
    float* next = l + 1 < shape_.layers ? acts_[l + 1].input.get() : final_input_.get();

    // LN1's output in scratch: the backward pass recomputes it (reserve()).
    float* ln1 = scratch_c2_.get();
    k.layernorm_forward(ln1, a.ln1_mean.get(), a.ln1_rstd.get(), a.input.get(),
                        view_.value(t.ln1_w), view_.value(t.ln1_b), N, C, eps);
    // With bf16 activations: q, k, v in scratch free during the forward pass, rounded to what
    // is saved of them; the attention's output where LN1's was (consumed by now).
    const SavedActivation qkv = saved_activation(a.qkv, a.qkv_bf16, scratch_3c_);
    k.matmul_forward(qkv.values, ln1, nullptr, view_.value(t.qkv_w), view_.value_bf16(t.qkv_w),
                     view_.value(t.qkv_b), N, C, 3 * C);
    save_bf16_rounded(qkv, 3 * n);
    const SavedActivation att = saved_activation(a.att, a.att_bf16, scratch_c2_);
    if (use_short_attention(length, d))
      k.short_attention_forward(att.values, a.lse.get(), qkv.values, sequences, length, heads, d);
    else
      k.attention_forward(att.values, a.lse.get(), qkv.values, sequences, length, heads, d);
    save_bf16(att, n);
    k.matmul_forward(scratch_c_.get(), att.values, att.bf16, view_.value(t.proj_w),
                     view_.value_bf16(t.proj_w), view_.value(t.proj_b), N, C, C);
    if (training_) k.dropout_forward(scratch_c_.get(), scratch_c_.get(), n, p, dropout_seed(l, 0), 0);
    k.residual_forward(a.mid.get(), a.input.get(), scratch_c_.get(), n);

    float* ln2 = scratch_c2_.get();  // recomputed by the backward pass, as LN1's
    k.layernorm_forward(ln2, a.ln2_mean.get(), a.ln2_rstd.get(), a.mid.get(),
                        view_.value(t.ln2_w), view_.value(t.ln2_b), N, C, eps);
    // The pre-activation and the activation each in its own scratch (both are free during the
    // forward pass): the activation reads the fp32 pre-activation, whatever is saved of it.
    const std::size_t nh = static_cast<std::size_t>(N) * Hd;
    const SavedActivation fc = saved_activation(a.fc, a.fc_bf16, scratch_h2_);
    k.matmul_forward(fc.values, ln2, nullptr, view_.value(t.fc_w), view_.value_bf16(t.fc_w),
                     nullptr, N, C, Hd);
    save_bf16(fc, nh);
    const SavedActivation act = saved_activation(a.act, a.act_bf16, scratch_h_);
    act_forward(k, shape_.activation, act.values, fc.values, view_.value(t.fc_b), N, Hd);
    save_bf16(act, nh);
    k.matmul_forward(scratch_c_.get(), act.values, act.bf16, view_.value(t.fc2_w),
                     view_.value_bf16(t.fc2_w), view_.value(t.fc2_b), N, Hd, C);
    if (training_) k.dropout_forward(scratch_c_.get(), scratch_c_.get(), n, p, dropout_seed(l, 1), 0);
    k.residual_forward(next, a.mid.get(), scratch_c_.get(), n);
    x = next;
  }
  if (shape_.layers == 0) k.copy(final_input_.get(), in, n * sizeof(float));
  k.layernorm_forward(out, lnf_mean_.get(), lnf_rstd_.get(), final_input_.get(),
                       view_.value(lnf_w_), view_.value(lnf_b_), N, C, eps);
}

void TransformerStack::backward(float* din, const float* dout) {
  backend::Backend& k = *backend_;
  const int N = sequences_ * length_, C = shape_.width, Hd = shape_.hidden;
  const int heads = shape_.heads, d = C / heads;
  const std::size_t n = static_cast<std::size_t>(N) * C;
  const float p = shape_.dropout;

  // din is the running gradient of the residual stream, from the top down.
  k.zero(din, n * sizeof(float));
  k.layernorm_backward(din, view_.grad(lnf_w_), view_.grad(lnf_b_), dout,
                        final_input_.get(), view_.value(lnf_w_), lnf_mean_.get(),
                        lnf_rstd_.get(), N, C);

  for (int l = shape_.layers - 1; l >= 0; --l) {
    const LayerTensors& t = layer_tensors_[l];
    LayerActivations& a = acts_[l];

    // Feed-forward branch: next = mid + Dropout(FC2(Act(FC1(LN2(mid))))).
    const float* dbranch = din;
    if (training_) {
      k.zero(scratch_c_.get(), n * sizeof(float));
      k.dropout_backward(scratch_c_.get(), din, n, p, dropout_seed(l, 1), 0);
      dbranch = scratch_c_.get();
    }
    k.zero(scratch_h_.get(), static_cast<std::size_t>(N) * Hd * sizeof(float));
    // The saved inputs of the products: fp32, or (bf16 activations) only their bf16 copies.
    k.matmul_backward(scratch_h_.get(), view_.grad(t.fc2_w), view_.grad(t.fc2_b), dbranch,
                      a.act.get(), a.act_bf16.get(), view_.value(t.fc2_w),
                      view_.value_bf16(t.fc2_w), N, Hd, C);
    k.zero(scratch_h2_.get(), static_cast<std::size_t>(N) * Hd * sizeof(float));
    // The pre-activation as saved: fp32, or its bf16 copy (read at the rounded value).
    act_backward(k, shape_.activation, scratch_h2_.get(), view_.grad(t.fc_b), scratch_h_.get(),
                 a.fc.get(), a.fc_bf16.get(), view_.value(t.fc_b), N, Hd);
    // LN2's output again, for FC1's weight gradient: the forward's bits (the same op on the
    // same input), into scratch_c_ (dbranch is consumed).
    const float* ln2 = recompute_layernorm(a.mid.get(), t.ln2_w, t.ln2_b, N, C);
    k.zero(scratch_c2_.get(), n * sizeof(float));
    k.matmul_backward(scratch_c2_.get(), view_.grad(t.fc_w), nullptr, scratch_h2_.get(), ln2,
                      nullptr, view_.value(t.fc_w), view_.value_bf16(t.fc_w), N, C, Hd);
    // d mid = d next (the residual path, already in din) + the norm's backward.
    k.layernorm_backward(din, view_.grad(t.ln2_w), view_.grad(t.ln2_b), scratch_c2_.get(),
                          a.mid.get(), view_.value(t.ln2_w), a.ln2_mean.get(),
                          a.ln2_rstd.get(), N, C);

    // Attention branch: mid = input + Dropout(Proj(Attention(LN1(input)))).
    dbranch = din;
    if (training_) {
      k.zero(scratch_c_.get(), n * sizeof(float));
      k.dropout_backward(scratch_c_.get(), din, n, p, dropout_seed(l, 0), 0);
      dbranch = scratch_c_.get();
    }
    k.zero(scratch_c2_.get(), n * sizeof(float));
    k.matmul_backward(scratch_c2_.get(), view_.grad(t.proj_w), view_.grad(t.proj_b), dbranch,
                      a.att.get(), a.att_bf16.get(), view_.value(t.proj_w),
                      view_.value_bf16(t.proj_w), N, C, C);
    // The attention's saved output and inputs in fp32 (scratch_c_ is free once the product's
    // backward has read dbranch).
    const float* att = saved_fp32(a.att, a.att_bf16, scratch_c_, n);
    const float* qkv = saved_fp32(a.qkv, a.qkv_bf16, scratch_qkv_, 3 * n);
    k.zero(scratch_3c_.get(), 3 * n * sizeof(float));
    if (use_short_attention(length_, d))
      k.short_attention_backward(scratch_3c_.get(), scratch_c2_.get(), att, a.lse.get(), qkv,
                                 sequences_, length_, heads, d);
    else
      k.attention_backward(scratch_3c_.get(), scratch_c2_.get(), att, a.lse.get(), qkv,
                           sequences_, length_, heads, d);
    // LN1's output again (scratch_c_ held the widened attention output, consumed by now).
    const float* ln1 = recompute_layernorm(a.input.get(), t.ln1_w, t.ln1_b, N, C);
    k.zero(scratch_c2_.get(), n * sizeof(float));
    k.matmul_backward(scratch_c2_.get(), view_.grad(t.qkv_w), view_.grad(t.qkv_b),
                      scratch_3c_.get(), ln1, nullptr, view_.value(t.qkv_w),
                      view_.value_bf16(t.qkv_w), N, C, 3 * C);
    k.layernorm_backward(din, view_.grad(t.ln1_w), view_.grad(t.ln1_b), scratch_c2_.get(),
                          a.input.get(), view_.value(t.ln1_w), a.ln1_mean.get(),
                          a.ln1_rstd.get(), N, C);
  }
}

}  // namespace mb::model
