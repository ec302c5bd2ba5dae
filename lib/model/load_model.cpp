#include "model/load_model.hpp"

#include <utility>

#include "model/checkpoint.hpp"

namespace mb::model {

std::unique_ptr<Model> load_model(const std::filesystem::path& checkpoint_dir,
                                  const ModelConfig& config, int max_batch,
                                  std::shared_ptr<backend::Backend> backend,
                                  const ActivationPolicy& policy) {
  // The config may come from the checkpoint itself: its tensors are checked against the
  // model's parameter table (nothing allocated) before the model is made.
  check_weights(checkpoint_dir, make_model(config, 0)->parameters());
  auto net = make_model(config, max_batch, std::move(backend), policy);
  load_weights(checkpoint_dir, net->parameters());
  net->upload_parameters();
  return net;
}

std::unique_ptr<Model> init_model(const ModelConfig& config, std::uint64_t seed, int max_batch,
                                  std::shared_ptr<backend::Backend> backend,
                                  const ActivationPolicy& policy) {
  auto net = make_model(config, max_batch, std::move(backend), policy);
  net->parameters().initialize(config.init_std, seed);
  net->upload_parameters();
  return net;
}

}  // namespace mb::model
