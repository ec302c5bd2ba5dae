// Causal multi-head self-attention on the GPU: the twin of cpu/attention.hpp (fp32, device
// pointers, default stream; see common.cuh). Plain C++: no CUDA types.
//
// Layouts as the CPU twin: qkv [B, T, 3, H, d], out [B, T, H, d], lse [B, H, T] (natural-log
// logsumexp of each query row's scaled scores, the row max included). Position t attends to
// 0..t with scores (q / sqrt(d)) · k. The T × T score matrix is never stored: the forward
// runs an online softmax over key tiles, the backward recomputes the scores from lse.
#pragma once

namespace mb::kernels::cuda {

// Largest head dimension the CUDA kernels support (one warp holds a row, 4 values per lane).
constexpr int kAttentionMaxHeadDim = 128;

// out and lse are overwritten; lse may be null when no backward pass follows. Throws
// std::invalid_argument unless B, T, H >= 0 and 0 < d <= kAttentionMaxHeadDim.
void attention_forward(float* out, float* lse, const float* qkv, int B, int T, int H, int d);

// dqkv [B, T, 3, H, d] += the gradient with respect to qkv, given dout and the out and lse of
// attention_forward. Deterministic (no atomics): each dK/dV row sums over queries in increasing
// order and each dQ row over keys in increasing order, so two runs give identical bits.
// Same argument checks as attention_forward.
// accumulate_dqkv false: dqkv is written, not read (the bits of adding to zeros), as the CPU.
void attention_backward(float* dqkv, const float* dout, const float* out, const float* lse,
                        const float* qkv, int B, int T, int H, int d, bool accumulate_dqkv = true);

}  // namespace mb::kernels::cuda
