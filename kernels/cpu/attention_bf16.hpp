// Causal self-attention of bf16 precision: the attention a bf16 backend runs for heads its
// tensor-core kernel takes (cuda/attention_bf16.cu), the CPU twin here.
//
// Same layouts, arguments and semantics as attention_forward / attention_backward
// (cpu/attention.hpp): qkv [B, T, 3, H, d], out [B, T, H, d], lse [B, H, T], the backward adds
// into dqkv (or writes it), every result is bit-reproducible. What differs: q, k and v are read rounded to
// bf16 (round to nearest even), as the tensor cores take them. In a bf16 model they already
// are (the stacks save q, k, v as bf16 and round them before the attention), so there the two
// attentions compute the same thing.
//
// This twin computes in fp32 from the rounded q, k, v. The CUDA kernel also feeds the tensor
// cores bf16 copies of what its products read inside the attention: the probabilities p (for
// p·V and pᵀ·dout), dout (for dout·Vᵀ and pᵀ·dout) and dS (for dS·K and dSᵀ·Q), all with
// fp32 accumulation, as FlashAttention does under autocast. Each such rounding moves a term
// by at most 2^-8 of itself, which is what tests/gpu/test_attention_bf16.cpp allows.
#pragma once

namespace mb::kernels::cpu {

// The heads the bf16 attention takes: d a multiple of 16 (the tensor cores' tile edge) up to
// 128. Backends run the fp32 attention for other heads, in every precision.
constexpr int kAttentionBf16MaxHeadDim = 128;
constexpr bool attention_bf16_supports(int d) {
  return d > 0 && d <= kAttentionBf16MaxHeadDim && d % 16 == 0;
}

// As attention_forward, from q, k, v rounded to bf16. Throws std::invalid_argument unless
// B, T, H >= 0 and attention_bf16_supports(d).
void attention_forward_bf16(float* out, float* lse, const float* qkv, int B, int T, int H, int d);

// As attention_backward, from q, k, v rounded to bf16 (out and lse as the forward gave them).
// Same argument checks as attention_forward_bf16.
void attention_backward_bf16(float* dqkv, const float* dout, const float* out, const float* lse,
                             const float* qkv, int B, int T, int H, int d,
                             bool accumulate_dqkv = true);

}  // namespace mb::kernels::cpu
