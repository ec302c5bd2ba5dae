#include "train/memory_plan.hpp"

#include "model/model.hpp"

namespace mb::train {

TrainingMemory plan_training_memory(const model::Config& config, backend::Device device,
                                    backend::Precision precision) {
  const auto plan = model::make_model_plan(
      config.model, config.train.batch_size, device, precision,
      model::activation_policy(config.model, config.train.recompute));
  const model::ModelMemory m = plan->memory();
  TrainingMemory r;
  r.parameter_count = plan->parameters().count();
  r.parameters = m.parameters;
  r.gradients = m.gradients;
  r.optimizer = 2 * m.parameters;   // AdamW's moments are laid out like the parameters
  r.bf16_weights = m.bf16_weights;
  r.activations = m.activations;
  r.workspace = device == backend::Device::cuda ? backend::kCudaMatmulWorkspaceBytes : 0;
  return r;
}

}  // namespace mb::train
