// Softmax cross-entropy through a tied output head, fused and chunked.
//
// logits = h[N,D] · E[0:V,D]ᵀ, where E is the (tied) byte embedding table; only its first V
// rows are output classes (rows past V, e.g. padding ids, are never read or written). Row n's
// loss is logsumexp(logits[n]) - logits[n, targets[n]]; rows whose target is negative carry no
// loss and no gradient (padding). Rows are processed in chunks of
// kCrossEntropyChunkFloats / V, so the N×V logits never exist at once, whatever N is.
#pragma once

#include <cstdint>

namespace mb::kernels::cpu {

constexpr int kCrossEntropyChunkFloats = 1 << 18;  // logits held at once (1 MiB)

struct CrossEntropySum {
  double loss = 0.0;       // sum of the losses of the counted rows (natural log)
  std::int64_t count = 0;  // rows with targets[n] >= 0
};

// The rows that carry a loss: those with targets[n] >= 0.
std::int64_t crossentropy_count(const std::int32_t* targets, int N);

// Loss of every row into losses[N] (0 for masked rows; losses may be null) and their sum.
// Targets must be < V (std::out_of_range otherwise, before anything is written).
CrossEntropySum crossentropy_forward(float* losses, const float* h, const float* E,
                                     const std::int32_t* targets, int N, int D, int V);

// Gradients of dloss · (sum of the row losses), accumulated (+=): dh[N,D] and dE[0:V,D];
// either may be null. For a mean loss, dloss = 1 / count. The logits are recomputed chunk by
// chunk; since that gives the losses as well, the same sums as crossentropy_forward are
// returned, and a training step needs only this call.
CrossEntropySum crossentropy_backward(float* dh, float* dE, const float* h, const float* E,
                                      const std::int32_t* targets, float dloss, int N, int D,
                                      int V);

}  // namespace mb::kernels::cpu
