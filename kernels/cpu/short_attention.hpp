// Causal multi-head self-attention for short sequences: the local model's patches (P = 8 for
// text, 32 for audio, 192 for images) and any other stack whose sequence is at most a few
// hundred positions long.
//
// Same layouts and semantics as attention_forward / attention_backward (cpu/attention.hpp):
//   qkv  [B, T, 3, H, d]   out [B, T, H, d]   lse [B, H, T]
// position t attends to 0..t with scores (q / sqrt(d)) · k, lse is the natural-log logsumexp
// of each query row, the backward adds (+=) into dqkv (or writes it), and every result is
// bit-reproducible.
// What differs is the shape of the work: a whole sequence (all its keys and values, and every
// query's full row of scores) is small enough to handle at once, so there is no online softmax
// and, on the GPU, one launch per pass with the sequence held in shared memory
// (cuda/short_attention.cu).
#pragma once

#include <cstddef>

#include "cpu/simd.hpp"

namespace mb::kernels::cpu {

// The shapes both twins accept are fixed by the CUDA kernels:
// - T <= 256: in the forward, a warp's 32 lanes hold a query's whole row of scores, 8 per lane;
// - d <= 128: a lane holds 4 elements of an output row (as cuda/attention.cuh);
// - the backward's shared memory (below) within 160 KiB, what A100 (163 KiB) and H100 (227
//   KiB) let a block opt in to; it keeps K and V of the whole sequence, so it bounds T · d: at
//   d = 128 T <= 125, at d <= 64 every T <= 256. Other GPUs allow less (sm_86 and sm_89, such
//   as A10, L4, L40 and the RTX 30 and 40 series: 99 KiB), so the CUDA twin takes the smaller
//   of the two (cuda::short_attention_max_smem_bytes()).
constexpr int kShortAttentionMaxT = 256;
constexpr int kShortAttentionMaxHeadDim = 128;
constexpr std::size_t kShortAttentionMaxSmemBytes = std::size_t{160} * 1024;
// Queries per tile that the CUDA backward stages at a time (one per lane).
constexpr int kShortAttentionQueryTile = 32;

// The CUDA backward kernel's dynamic shared memory in bytes: K and V of the sequence and one
// tile of scaled queries and of dout rows, all with rows padded to d + 1 floats (no bank
// conflicts when lane i reads row i), then lse and D = dout · out of every query.
// cuda/short_attention.cu carves its buffer in this order. The forward needs less
// (K and V, plus one query row per warp: 2·T·(d + 1) + 8·d floats).
constexpr std::size_t short_attention_backward_smem_bytes(int T, int d) {
  const std::size_t rows = 2 * static_cast<std::size_t>(T) + 2 * kShortAttentionQueryTile;
  return (rows * static_cast<std::size_t>(d + 1) + 2 * static_cast<std::size_t>(T)) * sizeof(float);
}

// Whether short_attention_forward / _backward take sequences of length T with heads of size d
// (T = 0 is an empty batch, which they accept), on a device that lets a block have
// max_smem_bytes of shared memory. The CPU twin has no limit of its own, yet refuses what an
// A100 or H100 cannot run: so that the CPU and those GPUs accept the same shapes and a model
// picks the same kernel for a stack on either (the CPU runs are the reference the GPU runs
// are checked against). A stack asks its backend (Backend::short_attention_fits), which on a
// GPU with less shared memory says no to more shapes; the stack then takes the tiled
// attention, which computes the same function.
constexpr bool short_attention_fits(int T, int d,
                                    std::size_t max_smem_bytes = kShortAttentionMaxSmemBytes) {
  return T >= 0 && T <= kShortAttentionMaxT && d > 0 && d <= kShortAttentionMaxHeadDim &&
         short_attention_backward_smem_bytes(T, d) <= max_smem_bytes;
}

// out and lse are overwritten; lse may be null when no backward pass follows. Throws
// std::invalid_argument, naming T and d, unless short_attention_fits(T, d) and B, H >= 0.
// `variant`: the products' AVX-512 code where the machine has it, or the AVX2 code
// everywhere; the two give the same bits (cpu/simd.hpp).
void short_attention_forward(float* out, float* lse, const float* qkv, int B, int T, int H, int d,
                             IsaVariant variant = IsaVariant::best);

// dqkv [B, T, 3, H, d] += the gradient with respect to qkv, given dout and the out and lse
// that a forward produced (with accumulate_dqkv false, = : dqkv is not read, and gets the bits
// of adding to zeros). Deterministic: each (batch, head) is one task with a fixed order of
// summation. Same argument checks as the forward.
void short_attention_backward(float* dqkv, const float* dout, const float* out, const float* lse,
                              const float* qkv, int B, int T, int H, int d,
                              bool accumulate_dqkv = true, IsaVariant variant = IsaVariant::best);

}  // namespace mb::kernels::cpu
