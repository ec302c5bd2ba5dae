// `megabyte bench --memory`: what training a config needs on a device, from the model's own
// allocation plan (model::make_model_plan: every buffer reserved, nothing allocated), plus
// what the optimiser and the device's matrix library hold. No device is needed to ask.
#pragma once

#include <cstddef>
#include <optional>

#include "backend/backend.hpp"
#include "model/config.hpp"

namespace mb::train {

struct TrainingMemory {
  std::size_t parameter_count = 0;  // trainable values
  std::size_t parameters = 0;       // bytes: fp32 values
  std::size_t gradients = 0;        // fp32, same layout
  std::size_t optimizer = 0;        // AdamW's m and v, fp32
  std::size_t bf16_weights = 0;     // the bf16 copy of the parameters (bf16 precision only)
  std::size_t activations = 0;      // the model's arena for train.batch_size windows
  std::size_t workspace = 0;        // the CUDA matmul's cuBLASLt workspace; 0 on the CPU
  std::size_t total() const {
    return parameters + gradients + optimizer + bf16_weights + activations + workspace;
  }
};

// An mb::Error (naming the config key) for a config the device cannot run, such as attention
// heads wider than the CUDA kernels take. With `ranks` processes sharing each step (one
// device each), the plan of one rank: the windows it holds at once (at most batch_size, at
// most its share of the step) and, with train.zero 1, its part of the optimizer state.
TrainingMemory plan_training_memory(const model::Config& config, backend::Device device,
                                    backend::Precision precision, int ranks = 1);

// Throws mb::Error when training `config` on `backend` plans for more memory than the device
// has available (Backend::available_bytes; nothing is checked where that is unknown), naming
// both and the --set options of fit_training_memory that would fit, if any.
void check_training_fits(const model::Config& config, backend::Backend& backend, int ranks = 1);

// A way to run the same optimiser step (batch_size × grad_accumulation windows) within a memory
// budget: the largest micro-batch (up to train.batch_size) that divides the step and fits, with
// the least that lets it fit of: recomputation (none, then local, global, all), then (MEGABYTE)
// all and the local model in chunks of 4096, 1024, 256 or 64 patches.
struct FittingPlan {
  int batch_size = 0;
  int grad_accumulation = 0;
  model::Recompute recompute = model::Recompute::none;
  int local_chunk = 0;
  TrainingMemory memory;
};
// The plan that fits `budget` bytes, or nothing when even one window with every stack
// recomputed does not. Micro-batches larger than the configured one are not tried.
std::optional<FittingPlan> fit_training_memory(const model::Config& config, backend::Device device,
                                               backend::Precision precision, std::size_t budget,
                                               int ranks = 1);

}  // namespace mb::train
