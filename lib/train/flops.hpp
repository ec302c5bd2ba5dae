// The arithmetic of a training step, counted explicitly (megabyte-bench(1) prints the formula),
// so `megabyte bench` can report achieved GFLOP/s beside the machine's sgemm rate.
//
// Forward FLOPs of one window (a multiply-add is 2 FLOPs):
//   a stack of L blocks, width C, feed-forward width H = m·C, over N rows in sequences of S:
//     matmuls    L · 2N(3C² + C² + 2CH)          (qkv, output projection, feed-forward)
//     attention  L · 2 · 2 · (N/S) · S(S+1)/2 · C (q·k and p·v over the causal triangle)
//   MEGABYTE:   global stack (N = S = K = T/P, C = P·D_G)
//             + local stack (N = T, S = P, C = D_L) + w_GL 2·T·D_G·D_L + head 2·T·D_L·256
//   transformer: one stack (N = S = T, C = D) + head 2·T·D·256
// A training step costs 3× its forward (the backward pass computes two products per forward
// product), times batch_size · grad_accumulation windows. Norms, activations, softmax and the
// optimiser are not counted: they are memory-bound and small beside the products.
#pragma once

#include "model/config.hpp"

namespace mb::train {

double forward_flops_per_window(const model::ModelConfig& c);
double training_flops_per_step(const model::Config& c);

}  // namespace mb::train
