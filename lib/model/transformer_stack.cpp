#include "model/transformer_stack.hpp"

#include <algorithm>
#include <stdexcept>

#include "cpu/activation.hpp"
#include "cpu/attention.hpp"
#include "cpu/dropout.hpp"
#include "cpu/layernorm.hpp"
#include "cpu/matmul.hpp"
#include "cpu/residual.hpp"

namespace mb::model {

namespace k = mb::kernels::cpu;

namespace {

void act_forward(Activation a, float* out, const float* inp, const float* bias, int N, int C) {
  if (a == Activation::relu) k::bias_relu_forward(out, inp, bias, N, C);
  else k::bias_gelu_forward(out, inp, bias, N, C);
}

void act_backward(Activation a, float* dinp, float* dbias, const float* dout, const float* inp,
                  const float* bias, int N, int C) {
  if (a == Activation::relu) k::bias_relu_backward(dinp, dbias, dout, inp, bias, N, C);
  else k::bias_gelu_backward(dinp, dbias, dout, inp, bias, N, C);
}

void zero(std::vector<float>& v, std::size_t n) { std::fill_n(v.begin(), n, 0.0f); }

}  // namespace

TransformerStack::TransformerStack(ParameterSet& params, const std::string& prefix,
                                   const StackShape& shape, ParamGroup group)
    : params_(params), shape_(shape) {
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

std::size_t TransformerStack::floats_per_row() const {
  const std::size_t C = shape_.width, H = shape_.hidden;
  // input, ln1, qkv (3C), att, mid, ln2 (C each) + fc, act (H each) + mean/rstd/lse per layer
  const std::size_t per_layer = 8 * C + 2 * H + 4 + shape_.heads;
  return per_layer * shape_.layers + C + 2 + (5 * C + 2 * H);  // + final input and scratch
}

void TransformerStack::reserve(int max_rows, int length) {
  if (max_rows % length != 0) throw std::logic_error("TransformerStack: rows not a multiple of length");
  const std::size_t N = max_rows, C = shape_.width, H = shape_.hidden;
  acts_.resize(shape_.layers);
  for (LayerActivations& a : acts_) {
    a.input.resize(N * C);
    a.ln1.resize(N * C);
    a.ln1_mean.resize(N);
    a.ln1_rstd.resize(N);
    a.qkv.resize(N * 3 * C);
    a.att.resize(N * C);
    a.lse.resize(N * shape_.heads);
    a.mid.resize(N * C);
    a.ln2.resize(N * C);
    a.ln2_mean.resize(N);
    a.ln2_rstd.resize(N);
    a.fc.resize(N * H);
    a.act.resize(N * H);
  }
  final_input_.resize(N * C);
  lnf_mean_.resize(N);
  lnf_rstd_.resize(N);
  scratch_c_.resize(N * C);
  scratch_c2_.resize(N * C);
  scratch_3c_.resize(N * 3 * C);
  scratch_h_.resize(N * H);
  scratch_h2_.resize(N * H);
}

std::uint64_t TransformerStack::dropout_seed(int layer, int site) const {
  // Each dropout site of a step gets its own mask stream.
  return k::splitmix64_mix(seed_ + static_cast<std::uint64_t>(layer * 2 + site + 1) *
                                       0xD1B54A32D192ED03ull);
}

void TransformerStack::forward(float* out, const float* in, int sequences, int length,
                               bool training, std::uint64_t seed) {
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
    if (x != a.input.data()) std::copy_n(x, n, a.input.data());
    float* next = l + 1 < shape_.layers ? acts_[l + 1].input.data() : final_input_.data();

    k::layernorm_forward(a.ln1.data(), a.ln1_mean.data(), a.ln1_rstd.data(), a.input.data(),
                         params_.value(t.ln1_w), params_.value(t.ln1_b), N, C, eps);
    k::matmul_forward(a.qkv.data(), a.ln1.data(), params_.value(t.qkv_w),
                      params_.value(t.qkv_b), N, C, 3 * C);
    k::attention_forward(a.att.data(), a.lse.data(), a.qkv.data(), sequences, length, heads, d);
    k::matmul_forward(scratch_c_.data(), a.att.data(), params_.value(t.proj_w),
                      params_.value(t.proj_b), N, C, C);
    if (training_) k::dropout_forward(scratch_c_.data(), scratch_c_.data(), n, p, dropout_seed(l, 0), 0);
    k::residual_forward(a.mid.data(), a.input.data(), scratch_c_.data(), n);

    k::layernorm_forward(a.ln2.data(), a.ln2_mean.data(), a.ln2_rstd.data(), a.mid.data(),
                         params_.value(t.ln2_w), params_.value(t.ln2_b), N, C, eps);
    k::matmul_forward(a.fc.data(), a.ln2.data(), params_.value(t.fc_w), nullptr, N, C, Hd);
    act_forward(shape_.activation, a.act.data(), a.fc.data(), params_.value(t.fc_b), N, Hd);
    k::matmul_forward(scratch_c_.data(), a.act.data(), params_.value(t.fc2_w),
                      params_.value(t.fc2_b), N, Hd, C);
    if (training_) k::dropout_forward(scratch_c_.data(), scratch_c_.data(), n, p, dropout_seed(l, 1), 0);
    k::residual_forward(next, a.mid.data(), scratch_c_.data(), n);
    x = next;
  }
  if (shape_.layers == 0) std::copy_n(in, n, final_input_.data());
  k::layernorm_forward(out, lnf_mean_.data(), lnf_rstd_.data(), final_input_.data(),
                       params_.value(lnf_w_), params_.value(lnf_b_), N, C, eps);
}

void TransformerStack::backward(float* din, const float* dout) {
  const int N = sequences_ * length_, C = shape_.width, Hd = shape_.hidden;
  const int heads = shape_.heads, d = C / heads;
  const std::size_t n = static_cast<std::size_t>(N) * C;
  const float p = shape_.dropout;

  // din is the running gradient of the residual stream, from the top down.
  std::fill_n(din, n, 0.0f);
  k::layernorm_backward(din, params_.grad(lnf_w_), params_.grad(lnf_b_), dout,
                        final_input_.data(), params_.value(lnf_w_), lnf_mean_.data(),
                        lnf_rstd_.data(), N, C);

  for (int l = shape_.layers - 1; l >= 0; --l) {
    const LayerTensors& t = layer_tensors_[l];
    LayerActivations& a = acts_[l];

    // Feed-forward branch: next = mid + Dropout(FC2(Act(FC1(LN2(mid))))).
    const float* dbranch = din;
    if (training_) {
      zero(scratch_c_, n);
      k::dropout_backward(scratch_c_.data(), din, n, p, dropout_seed(l, 1), 0);
      dbranch = scratch_c_.data();
    }
    zero(scratch_h_, static_cast<std::size_t>(N) * Hd);
    k::matmul_backward(scratch_h_.data(), params_.grad(t.fc2_w), params_.grad(t.fc2_b), dbranch,
                       a.act.data(), params_.value(t.fc2_w), N, Hd, C);
    zero(scratch_h2_, static_cast<std::size_t>(N) * Hd);
    act_backward(shape_.activation, scratch_h2_.data(), params_.grad(t.fc_b), scratch_h_.data(),
                 a.fc.data(), params_.value(t.fc_b), N, Hd);
    zero(scratch_c2_, n);
    k::matmul_backward(scratch_c2_.data(), params_.grad(t.fc_w), nullptr, scratch_h2_.data(),
                       a.ln2.data(), params_.value(t.fc_w), N, C, Hd);
    // d mid = d next (the residual path, already in din) + the norm's backward.
    k::layernorm_backward(din, params_.grad(t.ln2_w), params_.grad(t.ln2_b), scratch_c2_.data(),
                          a.mid.data(), params_.value(t.ln2_w), a.ln2_mean.data(),
                          a.ln2_rstd.data(), N, C);

    // Attention branch: mid = input + Dropout(Proj(Attention(LN1(input)))).
    dbranch = din;
    if (training_) {
      zero(scratch_c_, n);
      k::dropout_backward(scratch_c_.data(), din, n, p, dropout_seed(l, 0), 0);
      dbranch = scratch_c_.data();
    }
    zero(scratch_c2_, n);
    k::matmul_backward(scratch_c2_.data(), params_.grad(t.proj_w), params_.grad(t.proj_b),
                       dbranch, a.att.data(), params_.value(t.proj_w), N, C, C);
    zero(scratch_3c_, 3 * n);
    k::attention_backward(scratch_3c_.data(), scratch_c2_.data(), a.att.data(), a.lse.data(),
                          a.qkv.data(), sequences_, length_, heads, d);
    zero(scratch_c2_, n);
    k::matmul_backward(scratch_c2_.data(), params_.grad(t.qkv_w), params_.grad(t.qkv_b),
                       scratch_3c_.data(), a.ln1.data(), params_.value(t.qkv_w), N, C, 3 * C);
    k::layernorm_backward(din, params_.grad(t.ln1_w), params_.grad(t.ln1_b), scratch_c2_.data(),
                          a.input.data(), params_.value(t.ln1_w), a.ln1_mean.data(),
                          a.ln1_rstd.data(), N, C);
  }
}

}  // namespace mb::model
