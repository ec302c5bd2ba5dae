// One step of causal attention for generation: the twin of cpu/attention_step.hpp (same
// layouts and semantics; device pointers, default stream; see common.cuh). Plain C++.
#pragma once

#include <cstddef>

namespace mb::kernels::cuda {

// out[H, d] = softmax_j(q_h · k_j / sqrt(d)) · v_j over the n cached positions j < n, per head
// h; position j of head h is at k[j * stride + h * d] (likewise v). scores [H, n] is scratch.
// d <= kAttentionMaxHeadDim (attention.cuh); std::invalid_argument otherwise, or when n, H or d
// is below 1.
void attention_step(float* out, float* scores, const float* q, const float* k, const float* v,
                    int n, int H, int d, std::size_t stride);

}  // namespace mb::kernels::cuda
