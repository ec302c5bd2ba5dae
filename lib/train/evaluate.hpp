// Bits per byte of a model on a dataset split (DESIGN.md decision 8): every document scored
// from an empty context, in windows of T bytes back to back, the total taken over real bytes.
#pragma once

#include <cstdint>
#include <functional>

#include "data/dataset.hpp"
#include "model/model.hpp"

namespace mb::train {

struct EvalResult {
  double loss = 0.0;           // sum of -ln p over the scored bytes
  std::uint64_t bytes = 0;     // bytes scored
  std::uint64_t documents = 0; // documents scored (wholly or, at the max_bytes limit, in part)
  double bits_per_byte() const;
};

// Scores documents in order until at least `max_bytes` bytes are scored (0: the whole split),
// batching up to model.max_batch() windows per forward pass. `progress`, if set, is called
// with the bytes scored so far after each batch.
EvalResult evaluate_plain(model::Model& model, const data::SplitReader& split,
                          std::uint64_t max_bytes,
                          const std::function<void(std::uint64_t)>& progress = {});

}  // namespace mb::train
