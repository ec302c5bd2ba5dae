// `megabyte train`: the training loop, its run directory, checkpoints and exact resume.
//
// RUNDIR holds config.yaml (the resolved config), metrics.jsonl (one JSON object per logged
// step and per evaluation) and checkpoints/step-NNNNNNNN/ (see model/checkpoint.hpp). Every
// step is a deterministic function of (config, dataset, step): windows from the sampler's
// position, dropout masks keyed by (seed, step, micro-batch), the learning rate by step. So a
// run resumed from a checkpoint computes bit for bit what the uninterrupted run computed.
#pragma once

#include <cstdint>
#include <optional>
#include <filesystem>
#include <functional>

#include "backend/backend.hpp"
#include "data/dataset.hpp"
#include "model/config.hpp"

namespace mb::train {

struct TrainOptions {
  std::filesystem::path run_dir;
  bool resume = false;
  // Polled between steps; when it returns true, a checkpoint is written and train() returns.
  std::function<bool()> interrupted;
  // Stop after this many steps of this invocation (0: run to train.steps). For tests of
  // resume, and for `megabyte bench`.
  std::int64_t max_steps = 0;
  // Where the model runs. A checkpoint is the same file whichever device wrote it, so a run
  // may be resumed on another device (the steps after that are then not bit-identical to an
  // uninterrupted run on the first: the kernels round differently).
  backend::Device device = backend::Device::cpu;
  // Of the matrix products; none: the device's default (backend::default_precision: bf16 on
  // cuda, fp32 on the CPU), as make_backend(device) takes.
  std::optional<backend::Precision> precision;
};

struct TrainResult {
  std::int64_t start_step = 0;  // the step this invocation started from (0, or resumed)
  std::int64_t step = 0;        // steps completed
  double last_loss = 0.0;       // mean loss of the last step (nats per byte)
  double last_val_bpb = -1.0;   // last validation bits per byte (-1: none)
  bool interrupted = false;
  std::filesystem::path last_checkpoint;
};

// Checks that the dataset suits the config (its modality, and the image patch geometry for
// MEGABYTE): throws mb::Error naming both. Training and evaluation both call it.
void check_dataset_matches(const model::Config& config, const data::Dataset& dataset);

TrainResult train(const model::Config& config, const data::Dataset& dataset,
                  const TrainOptions& options);

}  // namespace mb::train
