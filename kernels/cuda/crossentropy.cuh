// Softmax cross-entropy through the tied output head on the GPU: the twin of
// cpu/crossentropy.hpp (fp32, device pointers, default stream; see common.cuh). Plain C++: no
// CUDA types.
//
// logits = h[N,D] · E[0:V,D]ᵀ; only the first V rows of E are classes. Row n's loss is
// logsumexp(logits[n]) - logits[n, targets[n]]; rows whose target is negative carry no loss
// and no gradient. Rows are processed in chunks of kCudaCrossEntropyChunkFloats / V rows, so
// the N×V logits never exist at once: per chunk, one cuBLAS SGEMM for the logits, one kernel
// for the per-row softmax and loss (and its gradient, in place), and for the backward two
// SGEMMs that accumulate dh and dE.
#pragma once

#include "cpu/crossentropy.hpp"

#include <cstdint>

namespace mb::kernels::cuda {

// The same result type as the CPU twin, so callers handle both backends alike.
using CrossEntropySum = cpu::CrossEntropySum;

// Logits held at once (16 MiB): larger than the CPU's chunk, since a GPU needs bigger
// products to be busy; the results do not depend on it beyond rounding in dE.
constexpr int kCudaCrossEntropyChunkFloats = 1 << 22;

// The rows that carry a loss: those with targets[n] >= 0. Waits for the result.
std::int64_t crossentropy_count(const std::int32_t* targets, int N);

// Loss of every row into losses[N] (0 for masked rows; losses may be null) and their sum.
// Targets must be < V (std::out_of_range otherwise, before anything is written). Waits for
// the sum, which is added in an order fixed by N (a fixed reduction tree in double).
CrossEntropySum crossentropy_forward(float* losses, const float* h, const float* E,
                                     const std::int32_t* targets, int N, int D, int V);

// Gradients of dloss · (sum of the row losses), accumulated (+=): dh[N,D] and dE[0:V,D];
// either may be null. For a mean loss, dloss = 1 / count. Returns the same sums as
// crossentropy_forward. Deterministic run to run on one GPU: cuBLAS is, on a single stream.
CrossEntropySum crossentropy_backward(float* dh, float* dE, const float* h, const float* E,
                                      const std::int32_t* targets, float dloss, int N, int D,
                                      int V);

}  // namespace mb::kernels::cuda
