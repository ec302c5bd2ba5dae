// A stack of pre-norm decoder blocks followed by a final layer norm: the global model, the
// local model and the byte-transformer baseline are each one of these. Forward and backward
// are written out op by op (llm.c's discipline) over the ops of a backend (lib/backend/, the
// kernels of kernels/cpu/ or their twins in kernels/cuda/):
//
//   for each layer:  a = x + Dropout(Proj(Attention(LN1(x))))
//                    x = a + Dropout(FC2(Act(FC1(LN2(a)))))
//   out = LN_f(x)
//
// The rows are `sequences` independent causal sequences of `length` positions each, laid out
// one after the other ([sequences, length, width]); the local model runs every patch of every
// window as one such batch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/arena.hpp"
#include "backend/backend.hpp"
#include "model/config.hpp"
#include "model/parameters.hpp"

namespace mb::model {

// Whether a stack's sequences of `length` positions with heads of size d take the attention
// made for short sequences (cpu/short_attention.hpp: on the GPU one launch per pass, the whole
// sequence in shared memory, fp32 on CUDA cores) rather than the tiled one. The two compute
// the same function, so this is a matter of speed:
// - in bf16, for heads the bf16 attention takes, the tiled attention runs its products on
//   tensor cores (cuda/attention_bf16.cu), in tiles of 64 queries; from one full tile on it is
//   taken (the image configs' local stacks: patches of 192 bytes). Shorter sequences (text
//   patches of 8, audio of 32) would leave most of a tile empty and keep the short attention;
// - otherwise the short attention wherever this backend's shared memory holds the sequence
//   (Backend::short_attention_fits), as every local stack and a global stack over few patches.
// The answer depends on the shape, the precision and the device alone, so a step's forward and
// backward use the same kernel. Not measured yet: no GPU has run this code.
inline constexpr int kTensorCoreAttentionMinLength = 64;
bool takes_short_attention(backend::Backend& backend, int length, int d);

struct StackShape {
  int layers = 0;
  int width = 0;   // C
  int heads = 0;
  int hidden = 0;  // feed-forward width, ffn_multiplier · C
  Activation activation = Activation::relu;
  float dropout = 0.0f;
  float layernorm_eps = 1e-5f;
};

class TransformerStack {
 public:
  // Registers the stack's tensors as PREFIX.layers.N.{ln1,attn.qkv,attn.proj,ln2,ffn.fc,
  // ffn.proj}.{weight,bias} and PREFIX.ln_f.{weight,bias} (see megabyte-checkpoint(5)).
  // The ops run on `backend` (null for a model that is only planned, never run) with the
  // tensors found through `view` (filled in by the model before the first forward).
  TransformerStack(ParameterSet& params, const ParameterView& view, backend::Backend* backend,
                   const std::string& prefix, const StackShape& shape, ParamGroup group);

  // Reserves the activation buffers in `arena` for up to `max_rows` rows of sequences of
  // `length`.
  //
  // LN1's and LN2's outputs (the inputs of FC_qkv and FC1) are not kept: the backward pass
  // recomputes them from the saved input, the same op on the same values and so the same bits,
  // for 2·C values less per row and layer (fp32, or the bf16 copies that bf16 activations
  // would keep) and one more layer-norm pass each.
  //
  // With `bf16_activations` (for bf16 precision only) four activations are saved as bf16
  // copies instead of fp32 values, (4·C + 2·hidden) · 2 bytes less per row and layer, for one
  // fp32 buffer of 3·C per row for the whole stack, which the backward pass widens the saved
  // q, k and v into:
  // - the activation's output (the input of FC2), which the backward pass reads only as a bf16
  //   matrix operand: the bf16 product rounds it anyway, so this changes no result;
  // - q, k and v, FC_qkv's output: the forward's attention reads them rounded to bf16 as well,
  //   so that the backward pass differentiates what the forward computed (as PyTorch's autocast,
  //   where they are bf16 tensors);
  // - the attention's output, the input of FC_proj (which rounds it anyway), read rounded by
  //   the attention's backward pass (its row sums of dout · out, as FlashAttention in bf16);
  // - FC1's output, the pre-activation, read rounded by the activation's backward pass (the
  //   forward's activation reads the fp32 value).
  void reserve(backend::Arena& arena, int max_rows, int length, bool bf16_activations);

  // out[rows, C] = the stack applied to in[rows, C], rows = sequences · length. Saves what the
  // backward pass needs. Dropout is applied when `training`, with masks keyed by `seed`.
  void forward(float* out, const float* in, int sequences, int length, bool training,
               std::uint64_t seed);

  // din[rows, C] = d loss / d in (overwritten), given dout = d loss / d out; parameter
  // gradients are accumulated into the ParameterSet's grads. Must follow forward().
  void backward(float* din, const float* dout);

  const StackShape& shape() const { return shape_; }

 private:
  struct LayerTensors {
    std::size_t ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b, ln2_w, ln2_b, fc_w, fc_b, fc2_w, fc2_b;
  };
  // What one layer's forward keeps for its backward. Of qkv, att, fc and act, either the fp32
  // slice or the bf16 one is reserved (see reserve()).
  struct LayerActivations {
    backend::Slice<float> input, ln1_mean, ln1_rstd, qkv, att, lse, mid, ln2_mean, ln2_rstd, fc,
        act;
    backend::Slice<std::uint16_t> qkv_bf16, att_bf16, fc_bf16, act_bf16;
  };

  // An activation that may be saved as a bf16 copy only: where the forward writes it in fp32
  // (its saved slice, or with bf16 activations a scratch buffer free during the forward pass),
  // and its saved bf16 copy (null without bf16 activations).
  struct SavedActivation {
    float* values;
    std::uint16_t* bf16;
  };
  SavedActivation saved_activation(const backend::Slice<float>& saved,
                                   const backend::Slice<std::uint16_t>& saved_bf16,
                                   const backend::Slice<float>& scratch) const;
  // After the forward wrote `a`: its bf16 copy, where one is kept.
  void save_bf16(const SavedActivation& a, std::size_t n);
  // The same, and then a's fp32 values become the copy's, so that what the forward reads next
  // is what the backward pass will read.
  void save_bf16_rounded(const SavedActivation& a, std::size_t n);
  // For the backward pass: a saved activation in fp32, its own slice or (saved as bf16 only)
  // its copy widened into `scratch`.
  const float* saved_fp32(const backend::Slice<float>& saved,
                          const backend::Slice<std::uint16_t>& saved_bf16,
                          const backend::Slice<float>& scratch, std::size_t n);

  // A layer norm's output recomputed in the backward pass from its saved input `inp`: into
  // scratch_c_ (returned), which callers make sure is free.
  const float* recompute_layernorm(const float* inp, std::size_t weight, std::size_t bias, int N,
                                   int C);
  std::uint64_t dropout_seed(int layer, int site) const;
  bool use_short_attention(int length, int d) const;

  const ParameterView& view_;
  backend::Backend* backend_;
  StackShape shape_;
  std::vector<LayerTensors> layer_tensors_;
  std::size_t lnf_w_ = 0, lnf_b_ = 0;

  std::vector<LayerActivations> acts_;
  backend::Slice<float> final_input_, lnf_mean_, lnf_rstd_;
  backend::Slice<float> scratch_c_, scratch_c2_, scratch_3c_, scratch_h_, scratch_h2_;
  backend::Slice<float> scratch_qkv_;   // with bf16 activations: the saved q, k, v widened
  int sequences_ = 0, length_ = 0;
  bool bf16_activations_ = false;
  bool training_ = false;
  std::uint64_t seed_ = 0;
};

}  // namespace mb::model
