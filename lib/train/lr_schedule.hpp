// The paper's learning-rate schedule: linear warm-up to the peak, then polynomial decay to 0.
#pragma once

#include <cstdint>

#include "model/config.hpp"

namespace mb::train {

// Learning rate of optimiser step `step` (0-based) of `steps`:
//   step < warmup:  lr · (step + 1) / warmup
//   otherwise:      lr · (1 - (step - warmup) / (steps - warmup))^power
// so the first step is not taken at 0 and the last one is taken just above 0.
double learning_rate(const model::OptimizerConfig& opt, std::int64_t steps, std::int64_t step);

}  // namespace mb::train
