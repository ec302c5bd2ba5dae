// A stack of pre-norm decoder blocks followed by a final layer norm: the global model, the
// local model and the byte-transformer baseline are each one of these. The block is defined
// once (block_forward in transformer_stack.cpp), op by op (llm.c's discipline) over the ops of
// a backend (lib/backend/), and serves the three entry points: forward over whole windows,
// its backward pass, and a cached step that runs one new position of B sequences against KV
// caches (generation):
//
//   for each layer:  a = x + Dropout(Proj(Attention(LN1(x))))
//                    x = a + Dropout(FC2(Act(FC1(LN2(a)))))
//   out = LN_f(x)
//
// In forward(), the rows are `sequences` independent causal sequences of `length` positions
// each, laid out one after the other ([sequences, length, width]); the local model runs every
// patch of every window as one such batch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/arena.hpp"
#include "backend/backend.hpp"
#include "model/config.hpp"
#include "model/parameters.hpp"

namespace mb::model {

struct StackShape {
  int layers = 0;
  int width = 0;  // C
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
  // With ReLU, FC1's output (the pre-activation) is not kept either: FC1 and the ReLU are one
  // op (matmul_bias_relu_forward) and the backward pass reads the activation's sign, which is
  // the pre-activation's (plus bias): H values less per row and layer, the same gradients.
  //
  // LN1's and LN2's outputs (the inputs of FC_qkv and FC1) are not kept: the backward pass
  // recomputes them from the saved input, the same op on the same values and so the same bits,
  // for 2·C values less per row and layer (fp32, or the bf16 copies that bf16 activations
  // would keep) and one more layer-norm pass each.
  //
  // With `bf16_activations` (for bf16 precision only) four activations (three with ReLU) are
  // saved as bf16 copies instead of fp32 values, (4·C + 2·hidden) · 2 bytes (with ReLU
  // (4·C + hidden) · 2) less per row and layer, for one fp32 buffer of 3·C per row for the
  // whole stack, which the backward pass widens the saved q, k and v into:
  // - the activation's output (the input of FC2), which the backward pass reads only as a bf16
  //   matrix operand: the bf16 product rounds it anyway, so this changes no result;
  // - q, k and v, FC_qkv's output: the forward's attention reads them rounded to bf16 as well,
  //   so that the backward pass differentiates what the forward computed (as PyTorch's autocast,
  //   where they are bf16 tensors);
  // - the attention's output, the input of FC_proj (which rounds it anyway), read rounded by
  //   the attention's backward pass (its row sums of dout · out, as FlashAttention in bf16);
  // - with GELU, FC1's output, the pre-activation, read rounded by the activation's backward
  //   pass (the forward's activation reads the fp32 value). A ReLU's backward pass reads the
  //   activation's bf16 copy, which has the fp32 value's sign (but for positives under bf16's
  //   smallest subnormal, 2^-133, which round to 0 and pass no gradient).
  //
  // With `recompute`, a layer keeps only its input (C values per row) and its backward pass
  // runs its forward again first, with the same kernels in the same order (and the same
  // dropout masks), so the gradients are the same bits; one set of the other activations serves
  // every layer. Activations fall from about (2·hidden + 6·C) (with ReLU hidden + 6·C) to C
  // values per row and layer (fp32), for one more forward pass of every layer but the top one.
  //
  // With `inference_only` only infer()'s buffers are reserved (the residual stream, one layer's
  // scratch, and with bf16 activations one bf16 buffer for q, k and v): no layer keeps
  // anything, and forward() and backward() refuse to run.
  void reserve(backend::Arena& arena, int max_rows, int length, bool bf16_activations,
               bool recompute = false, bool inference_only = false);

  // out[rows, C] = the stack applied to in[rows, C], rows = sequences · length. Saves what the
  // backward pass needs. Dropout is applied when `training`, with masks keyed by `seed`; the
  // rows are rows first_row.. of a larger batch run a part at a time (the local model in
  // chunks), whose masks are those the whole batch would draw at those rows.
  void forward(float* out, const float* in, int sequences, int length, bool training,
               std::uint64_t seed, std::uint64_t first_row = 0);

  // out[rows, C] = what forward() computes with `training` false, the same bits, keeping
  // nothing for a backward pass (eval, logits): the block runs in place on one residual
  // buffer with one set of scratch buffers for every layer, the attention keeps no
  // log-sum-exp, and FC1's product and a ReLU are one op (matmul_bias_relu_forward: the same
  // bits as the two). backward() must not follow it.
  void infer(float* out, const float* in, int sequences, int length);

  // din[rows, C] = d loss / d in (overwritten), given dout = d loss / d out; parameter
  // gradients are accumulated into the ParameterSet's grads. Must follow forward().
  void backward(float* din, const float* dout);

  // The KV caches and step buffers of `batch` sequences of up to `capacity` positions run one
  // position at a time (step()), all at the same position. Each layer keeps the keys and
  // values of the positions run so far ([batch, capacity, C] each): fp32, or in a stack with
  // bf16 activations the bf16 patterns its attention reads (the same values in half the
  // memory).
  class Cache {
   public:
    int length() const { return length_; }  // positions run so far
    void reset() { length_ = 0; }

   private:
    friend class TransformerStack;
    struct Layer {
      backend::Slice<float> keys, values;
      backend::Slice<std::uint16_t> keys_bf16, values_bf16;
    };
    std::vector<Layer> layers_;
    backend::Slice<float> x_, ln_, qkv_, att_, branch_, fc_, scores_;
    backend::Slice<std::uint16_t> qkv_bf16_;
    int batch_ = 0, capacity_ = 0, length_ = 0;
    bool bf16_activations_ = false;
  };
  // A cache reserved in `arena` (committed by the caller before the first step()).
  Cache reserve_cache(backend::Arena& arena, int batch, int capacity, bool bf16_activations) const;

  // out[batch, C] = the stack's output at position cache.length() of each sequence, given
  // that position's inputs in[batch, C]: the block of forward() (no dropout), its attention
  // over the cache, which the position joins. What forward() computes at that row, to the
  // attention's rounding (another kernel sums in another order).
  void step(float* out, const float* in, Cache& cache) const;

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

  // An activation as the block writes it: its fp32 values (where the op writes, and what the
  // next op of the forward reads) and, where one is kept, its bf16 patterns.
  struct ActivationBuffer {
    float* values;
    std::uint16_t* bf16;
    backend::Operand operand() const { return {values, bf16}; }
  };
  // Where one block's forward reads and writes: forward() points it at the saved activations
  // of a layer, step() at a cache's buffers. Null statistics are not kept.
  struct BlockBuffers {
    const float* input;
    float* mid;     // input + the attention branch (may be input: in place)
    float* output;  // mid + the feed-forward branch (may be mid)
    float *ln1_mean, *ln1_rstd, *ln2_mean, *ln2_rstd;
    float* ln;  // a layer norm's output, scratch [rows, C]
    ActivationBuffer qkv, att, fc, act;
    float* branch;  // a branch's output, scratch [rows, C]
    // The rows are a cached step's (one per sequence), not whole windows': the products are
    // the backend's matmul_step_forward, which streams the weights once for a few rows.
    // With ReLU, FC1's product and the activation are one op straight into act (nothing reads
    // the pre-activation: neither the inference pass nor a backward pass, which reads a ReLU's
    // output), except in a step, whose products are matmul_step_forward's.
    bool step = false;
  };
  // The block, once: the input's rows through a = x + Dropout(Proj(Attention(LN1(x)))),
  // x = a + Dropout(FC2(Act(FC1(LN2(a))))). `attend(att, qkv)` is the attention over the rows'
  // sequences (the whole window's, or a cache's); dropout only with a dropout seed.
  template <class Attend>
  void block_forward(int layer, const BlockBuffers& b, int rows, const std::uint64_t* dropout,
                     Attend&& attend) const;

  // After the forward wrote `a`: its bf16 copy, where one is kept.
  void save_bf16(const ActivationBuffer& a, std::size_t n) const;
  // The same, and then a's fp32 values become the copy's, so that what the forward reads next
  // is what the backward pass will read.
  void save_bf16_rounded(const ActivationBuffer& a, std::size_t n) const;
  // For the backward pass: a saved activation in fp32, its own slice or (saved as bf16 only)
  // its copy widened into `scratch`.
  const float* saved_fp32(const backend::Slice<float>& saved,
                          const backend::Slice<std::uint16_t>& saved_bf16,
                          const backend::Slice<float>& scratch, std::size_t n);
  // Where layer l's activations other than its input are saved: its own, or (recomputation)
  // the one set that its forward fills again.
  LayerActivations& saved(int layer);
  // Layer l's forward over the rows of the last forward(), saving what its backward reads
  // (in saved(l)), its output to `output`.
  void saving_layer_forward(int layer, float* output);
  // A saved activation as an operand: its fp32 slice or its bf16 patterns.
  backend::Operand saved_operand(const backend::Slice<float>& saved,
                                 const backend::Slice<std::uint16_t>& saved_bf16) const;

  // A layer norm's output recomputed in the backward pass from its saved input `inp`: into
  // scratch_c_ (returned), which callers make sure is free.
  const float* recompute_layernorm(const float* inp, std::size_t weight, std::size_t bias, int N,
                                   int C);
  // The dropout mask seed of one site (two per layer) of a step whose seed is `seed`.
  static std::uint64_t dropout_seed(std::uint64_t seed, int layer, int site);

  const ParameterView& view_;
  backend::Backend* backend_;
  StackShape shape_;
  std::vector<LayerTensors> layer_tensors_;
  std::size_t lnf_w_ = 0, lnf_b_ = 0;

  std::vector<LayerActivations> acts_;  // with recomputation, inputs only
  LayerActivations recomputed_;         // with recomputation: the one set, of every layer
  backend::Slice<float> final_input_, lnf_mean_, lnf_rstd_;
  backend::Slice<float> scratch_c_, scratch_c2_, scratch_3c_, scratch_h_, scratch_h2_;
  backend::Slice<float> scratch_qkv_;  // with bf16 activations: the saved q, k, v widened
  backend::Slice<std::uint16_t>
      infer_qkv_bf16_;  // with bf16 activations: infer()'s rounded q, k, v
  int sequences_ = 0, length_ = 0;
  bool bf16_activations_ = false;
  bool recompute_ = false;
  bool inference_only_ = false;
  bool training_ = false;
  std::uint64_t seed_ = 0;
  std::uint64_t dropout_offset_ = 0;  // first_row · C: where this forward's masks start
};

}  // namespace mb::model
