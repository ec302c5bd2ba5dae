#include "train/memory_plan.hpp"

#include <algorithm>
#include <vector>

#include "core/error.hpp"
#include "core/progress.hpp"
#include "model/model.hpp"

namespace mb::train {

TrainingMemory plan_training_memory(const model::Config& config, backend::Device device,
                                    backend::Precision precision, int ranks) {
  const model::TrainConfig& tc = config.train;
  ranks = std::max(ranks, 1);
  const int windows =
      std::max(1, std::min(tc.batch_size, tc.batch_size * tc.grad_accumulation / ranks));
  const auto plan = model::make_model_plan(config.model, windows, device, precision,
                                           model::activation_policy(config.model, tc));
  const model::ModelMemory m = plan->memory();
  TrainingMemory r;
  r.parameter_count = plan->parameters().count();
  r.parameters = m.parameters;
  r.gradients = m.gradients;
  // AdamW's moments are laid out like the parameters; sharded, a rank keeps 1/ranks of them.
  const int shards = tc.zero ? ranks : 1;
  r.optimizer = 2 * ((m.parameters / sizeof(float) + shards - 1) / shards) * sizeof(float);
  r.bf16_weights = m.bf16_weights;
  r.activations = m.activations;
  r.workspace = device == backend::Device::cuda ? backend::kCudaMatmulWorkspaceBytes : 0;
  return r;
}

void check_training_fits(const model::Config& config, backend::Backend& backend, int ranks) {
  const std::size_t available = backend.available_bytes();
  if (available == 0) return;
  const TrainingMemory need =
      plan_training_memory(config, backend.device(), backend.precision(), ranks);
  if (need.total() <= available) return;
  const std::string device(backend::device_name(backend.device()));
  const auto fitting =
      fit_training_memory(config, backend.device(), backend.precision(), available, ranks);
  std::string hint;
  if (fitting) {
    hint = "the same step fits as --set train.batch_size=" + std::to_string(fitting->batch_size) +
           " --set train.grad_accumulation=" + std::to_string(fitting->grad_accumulation) +
           " --set train.recompute=" + std::string(model::recompute_name(fitting->recompute));
    if (fitting->local_chunk)
      hint += " --set train.local_chunk=" + std::to_string(fitting->local_chunk);
    hint += " (" + human_bytes(static_cast<double>(fitting->memory.total())) + ")";
  } else {
    hint = "not even one window at a time fits: lower model.context or the model's widths";
  }
  throw Error("memory",
              "training this config needs " + human_bytes(static_cast<double>(need.total())) +
                  " on the " + device + " (megabyte bench --memory), " +
                  human_bytes(static_cast<double>(available)) + " is available",
              hint);
}

std::optional<FittingPlan> fit_training_memory(const model::Config& config, backend::Device device,
                                               backend::Precision precision, std::size_t budget,
                                               int ranks) {
  using model::Recompute;
  const bool megabyte = config.model.kind == model::ModelKind::megabyte;
  const int step = config.train.batch_size * config.train.grad_accumulation;
  // What to try for each micro-batch, cheapest first: recomputation costs a forward pass of a
  // stack, chunks cost the local products' efficiency when small.
  struct Setting {
    Recompute recompute;
    int local_chunk;
  };
  std::vector<Setting> settings{{Recompute::none, 0}};
  if (megabyte) settings.push_back({Recompute::local, 0});
  settings.push_back({Recompute::global, 0});
  if (megabyte)
    for (int chunk : {0, 4096, 1024, 256, 64}) settings.push_back({Recompute::all, chunk});
  // Fewer windows at once cost speed: the largest micro-batch up to the configured one first.
  for (int b = config.train.batch_size; b >= 1; --b) {
    if (step % b != 0) continue;
    for (const Setting& s : settings) {
      model::Config c = config;
      c.train.batch_size = b;
      c.train.grad_accumulation = step / b;
      c.train.recompute = s.recompute;
      c.train.local_chunk = s.local_chunk;
      if (step % ranks != 0) continue;
      const TrainingMemory m = plan_training_memory(c, device, precision, ranks);
      if (m.total() <= budget) return FittingPlan{b, step / b, s.recompute, s.local_chunk, m};
    }
  }
  return std::nullopt;
}

}  // namespace mb::train
