// One optimiser step: grad_accumulation micro-batches of batch_size windows, the gradient of
// their mean loss over all real bytes, global-norm clipping, the scheduled learning rate and
// AdamW. Shared by `megabyte train` and `megabyte bench`, so the benchmark measures exactly
// the work training does.
#pragma once

#include <cstdint>

#include "dist/collectives.hpp"
#include "dist/job.hpp"
#include "model/config.hpp"
#include "model/model.hpp"
#include "model/optimizer.hpp"
#include "train/step_share.hpp"

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

// How this process takes part in a step of a job of several (DESIGN.md, decision 9): its
// windows, and the collectives that join the ranks' gradients (and, where the optimizer is
// sharded, their parameters). Every rank then ends the step with the same parameters.
struct StepParallel {
  StepShare share;                           // this rank's windows of the step
  dist::Job* job = nullptr;                  // the step's byte count and loss are summed over it
  dist::Collectives* collectives = nullptr;  // the gradients' sum, the parameters' gather
  // The optimizer's shards where it is sharded (train.zero: 1): after its step, each rank's
  // shard of the parameters goes to every other rank.
  const dist::Sharding* sharding = nullptr;
  // Added to by every step: the time spent in the gradients' sum and the parameters' gather
  // (including the wait for the slowest rank), and the bytes each rank sent into them.
  double collective_seconds = 0.0;
  double collective_bytes = 0.0;
};

// `ids` holds grad_accumulation · batch_size windows of T ids, or with `parallel` this rank's
// share.windows windows; `step` is 0-based.
StepResult train_step(model::Model& net, model::AdamW& optimizer, const model::TrainConfig& tc,
                      const std::int32_t* ids, std::int64_t step, StepParallel* parallel = nullptr);

}  // namespace mb::train
