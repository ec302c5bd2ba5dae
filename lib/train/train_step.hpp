// One optimiser step: grad_accumulation micro-batches of batch_size windows, the gradient of
// their mean loss over all real bytes, global-norm clipping, the scheduled learning rate and
// AdamW. Shared by `megabyte train` and `megabyte bench`, so the benchmark measures exactly
// the work training does.
#pragma once

#include <cstdint>

#include "model/config.hpp"
#include "model/model.hpp"
#include "model/optimizer.hpp"

namespace mb::train {

struct StepResult {
  double loss_sum = 0.0;   // summed over the step's real bytes (nats)
  std::int64_t bytes = 0;  // real bytes (the loss is their mean: loss_sum / bytes)
  double grad_norm = 0.0;  // before clipping
  double lr = 0.0;
};

// The dropout masks of micro-batch `micro` of step `step`: a pure function of both, so a
// resumed run draws the masks the uninterrupted one drew.
std::uint64_t dropout_seed(std::uint64_t seed, std::int64_t step, int micro);

// `ids` holds grad_accumulation · batch_size windows of T ids; `step` is 0-based.
StepResult train_step(model::Model& net, model::AdamW& optimizer, const model::TrainConfig& tc,
                      const std::int32_t* ids, std::int64_t step);

}  // namespace mb::train
