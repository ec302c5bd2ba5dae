// One step of causal attention for generation: the newest position's query against the keys
// and values of every position so far (a KV cache), itself included, for B sequences side by
// side (the samples generated together), each with its own cache.
//
// Layouts (fp32) of sequence b < B:
//   q      [H, d] at q + b · q_stride      the query of the new position (heads one after the
//                                          other, as in qkv: a batch of qkv rows [B, 3, H, d]
//                                          has q_stride 3·H·d)
//   k, v   at k + b · batch_stride         position j of head h at [j · stride + h · d] (likewise
//                                          v), j < n: a cache of rows [n, H·d] has stride H·d;
//                                          the qkv buffer of attention_forward, [T, 3, H, d], is
//                                          read in place with stride 3·H·d
//   out    [B, H, d]                       dense, the input of the output projection
//   scores [B, H, n]                       scratch, overwritten
// Scores are q·k / sqrt(d), softmaxed over j < n with the row maximum subtracted first (so no
// exp overflows), then used to average the values. With the cache holding positions 0..t of a
// sequence this is row t of attention_forward's output.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mb::kernels::cpu {

// Throws std::invalid_argument unless B, n, H, d >= 1. Any d: the CPU attentions have no limit,
// while the CUDA twin, like the CUDA attention, takes d <= 128 (cuda/attention.cuh); a model's
// heads are checked against its backend's limit when it is built (Backend::max_head_dim).
// Each (sequence, head) is computed alone, so a sequence's result does not depend on B.
void attention_step(float* out, float* scores, const float* q, const float* k, const float* v,
                    int B, int n, int H, int d, std::size_t q_stride, std::size_t stride,
                    std::size_t batch_stride);

// The same over caches of bf16 patterns (k and v; q stays fp32), read at their exact fp32
// values: the result equals attention_step over the widened caches, bit for bit. A model in
// bf16 rounds q, k and v to bf16 (TransformerStack), so its generator keeps its caches this
// way, in half the memory, and computes the same.
void attention_step_bf16(float* out, float* scores, const float* q, const std::uint16_t* k,
                         const std::uint16_t* v, int B, int n, int H, int d, std::size_t q_stride,
                         std::size_t stride, std::size_t batch_stride);

}  // namespace mb::kernels::cpu
