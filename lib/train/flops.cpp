#include "train/flops.hpp"

namespace mb::train {

namespace {

double stack_flops(double rows, double seq, double C, double layers, double ffn_multiplier) {
  const double H = ffn_multiplier * C;
  const double matmuls = 2.0 * rows * (4.0 * C * C + 2.0 * C * H);
  const double attention = 4.0 * (rows / seq) * seq * (seq + 1.0) / 2.0 * C;
  return layers * (matmuls + attention);
}

}  // namespace

double forward_flops_per_window(const model::ModelConfig& c) {
  const double T = c.context, m = c.ffn_multiplier;
  if (c.kind == model::ModelKind::transformer) {
    const double D = c.global.dim;
    return stack_flops(T, T, D, c.global.layers, m) + 2.0 * T * D * 256.0;
  }
  const double P = c.patch_size, K = T / P, DG = c.global.dim, DL = c.local.dim;
  return stack_flops(K, K, P * DG, c.global.layers, m) + stack_flops(T, P, DL, c.local.layers, m) +
         2.0 * T * DG * DL + 2.0 * T * DL * 256.0;
}

double training_flops_per_step(const model::Config& c) {
  return 3.0 * forward_flops_per_window(c.model) * c.train.batch_size * c.train.grad_accumulation;
}

}  // namespace mb::train
