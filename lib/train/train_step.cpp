#include "train/train_step.hpp"

#include <cmath>

#include "core/rng.hpp"
#include "train/lr_schedule.hpp"

namespace mb::train {

std::uint64_t dropout_seed(std::uint64_t seed, std::int64_t step, int micro) {
  return splitmix64_mix(splitmix64_mix(seed ^ 0x44524F504F5554ull) +
                        static_cast<std::uint64_t>(step) * 1024 +
                        static_cast<std::uint64_t>(micro));
}

StepResult train_step(model::Model& net, model::AdamW& optimizer, const model::TrainConfig& tc,
                      const std::int32_t* ids, std::int64_t step) {
  const int T = net.config().context, B = tc.batch_size, A = tc.grad_accumulation;
  const std::size_t window_ids = static_cast<std::size_t>(B) * T;
  StepResult r;
  // The mean is over every real byte of the step, so count them all before the first backward.
  std::int64_t count = 0;
  for (std::size_t i = 0; i < window_ids * A; ++i) count += ids[i] < model::kByteValues;
  r.bytes = count;
  if (count == 0) return r;

  net.zero_gradients();
  for (int a = 0; a < A; ++a) {
    net.forward(ids + a * window_ids, B, true, dropout_seed(tc.seed, step, a));
    r.loss_sum += net.backward(1.0f / static_cast<float>(count)).loss;
  }
  backend::Backend& k = *net.backend();
  float* grads = net.view().grads;
  const std::size_t n = net.parameters().buffer_size();
  r.grad_norm = tc.optimizer.grad_clip > 0
                    ? k.clip_grad_norm(grads, n, static_cast<float>(tc.optimizer.grad_clip))
                    : std::sqrt(k.grad_norm_squared(grads, n));
  r.lr = learning_rate(tc.optimizer, tc.steps, step);
  optimizer.step(net, tc.optimizer, r.lr, step + 1);
  return r;
}

}  // namespace mb::train
