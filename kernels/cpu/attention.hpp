// Causal multi-head self-attention, fused and memory-efficient (flash-attention style).
//
// Layouts (all dense, row-major fp32):
//   qkv  [B, T, 3, H, d]  queries, keys and values of every position, as one buffer: the
//                         output of a single matmul with a [3·H·d, C] weight, used as it is.
//   out  [B, T, H, d]     = [B, T, H·d], the input of the output projection.
//   lse  [B, H, T]        per query row, log of the softmax denominator (natural log,
//                         including the row max), saved by the forward for the backward.
// Position t attends to positions 0..t, with scores q·k / sqrt(d). The T×T score matrix is
// never materialised: keys are processed in blocks with a running max and sum per query row
// (online softmax), and the backward pass recomputes the scores block by block from lse.
#pragma once

namespace mb::kernels::cpu {

// Block sizes of the CPU kernels (query rows per block, keys per block). Results do not
// depend on them beyond rounding; tests use them to cover partial blocks.
constexpr int kAttentionBlockQ = 64;
constexpr int kAttentionBlockK = 64;

// out and lse are overwritten. lse may be null when no backward pass follows.
void attention_forward(float* out, float* lse, const float* qkv, int B, int T, int H, int d);

// dqkv [B, T, 3, H, d] += the gradient of the loss with respect to qkv, given dout (the
// gradient with respect to out) and the out and lse that attention_forward produced (with
// accumulate_dqkv false, = : dqkv is not read, and gets the bits of adding to zeros).
// Deterministic: each (batch, head) is one task and adds its terms in a fixed order.
void attention_backward(float* dqkv, const float* dout, const float* out, const float* lse,
                        const float* qkv, int B, int T, int H, int d, bool accumulate_dqkv = true);

}  // namespace mb::kernels::cpu
