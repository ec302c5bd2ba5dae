// One step of causal attention for generation: the twin of cpu/attention_step.hpp (same
// layouts and semantics; device pointers, default stream; see common.cuh). Plain C++.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mb::kernels::cuda {

// For each of B sequences b: out[b, h] = softmax_j(q_h · k_j / sqrt(d)) · v_j over the n cached
// positions j < n, per head h; q of sequence b at q + b · q_stride, its keys at k + b ·
// batch_stride with position j of head h at [j · stride + h · d] (likewise v). scores
// [B, H, n] is scratch. d <= kAttentionMaxHeadDim (attention.cuh); std::invalid_argument
// otherwise, or when B, n, H or d is below 1, or B · H exceeds the grid.
void attention_step(float* out, float* scores, const float* q, const float* k, const float* v,
                    int B, int n, int H, int d, std::size_t q_stride, std::size_t stride,
                    std::size_t batch_stride);

// The same over caches of bf16 patterns (k and v; q stays fp32), read at their exact values:
// the twin of cpu::attention_step_bf16. Same checks.
void attention_step_bf16(float* out, float* scores, const float* q, const std::uint16_t* k,
                         const std::uint16_t* v, int B, int n, int H, int d, std::size_t q_stride,
                         std::size_t stride, std::size_t batch_stride);

}  // namespace mb::kernels::cuda
