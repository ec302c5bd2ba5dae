#include "train/lr_schedule.hpp"

#include <algorithm>
#include <cmath>

namespace mb::train {

double learning_rate(const model::OptimizerConfig& opt, std::int64_t steps, std::int64_t step) {
  const std::int64_t warmup = opt.warmup_steps;
  if (step < warmup) return opt.lr * static_cast<double>(step + 1) / static_cast<double>(warmup);
  const double span = static_cast<double>(std::max<std::int64_t>(steps - warmup, 1));
  const double progress = std::clamp(static_cast<double>(step - warmup) / span, 0.0, 1.0);
  return opt.lr * std::pow(1.0 - progress, opt.decay_power);
}

}  // namespace mb::train
