// A model ready to run: made on its backend, its weights read from a checkpoint (or freshly
// initialised) and copied to the backend's memory. Every command that runs a model starts
// with one of these, so no caller can forget the upload or load weights into a model of
// another shape.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>

#include "backend/backend.hpp"
#include "model/config.hpp"
#include "model/model.hpp"

namespace mb::model {

// The model of `config` on `backend` for batches of up to `max_batch` windows (0: its weights
// only, what a Generator needs), with the weights of the checkpoint in `checkpoint_dir`, whose
// tensors must be the model's (load_weights names any that is not). `policy`: how a model that
// trains keeps its activations (train.recompute).
std::unique_ptr<Model> load_model(const std::filesystem::path& checkpoint_dir,
                                  const ModelConfig& config, int max_batch,
                                  std::shared_ptr<backend::Backend> backend,
                                  const ActivationPolicy& policy = {});

// The same with fresh weights: drawn from config.init_std and `seed`, as a new training run
// starts.
std::unique_ptr<Model> init_model(const ModelConfig& config, std::uint64_t seed, int max_batch,
                                  std::shared_ptr<backend::Backend> backend,
                                  const ActivationPolicy& policy = {});

}  // namespace mb::model
