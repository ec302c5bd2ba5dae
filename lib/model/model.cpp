#include "model/model.hpp"

namespace mb::model {

std::unique_ptr<Model> make_model(const ModelConfig& config, int max_batch) {
  if (config.kind == ModelKind::megabyte) return make_megabyte_model(config, max_batch);
  return make_byte_transformer_model(config, max_batch);
}

void targets_from_ids(std::int32_t* targets, const std::int32_t* ids, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) targets[i] = ids[i] < kByteValues ? ids[i] : -1;
}

}  // namespace mb::model
