#include "train/train_step.hpp"

#include <chrono>
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
                      const std::int32_t* ids, std::int64_t step, StepParallel* parallel) {
  const int T = net.config().context;
  const StepShare whole =
      parallel ? StepShare{} : share_step(tc.batch_size, tc.grad_accumulation, 1, 0);
  const StepShare& share = parallel ? parallel->share : whole;
  const std::size_t own_ids = static_cast<std::size_t>(share.windows) * T;
  StepResult r;
  // The mean is over every real byte of the step, so count them all (on every rank) before
  // the first backward.
  std::int64_t count = 0;
  for (std::size_t i = 0; i < own_ids; ++i) count += ids[i] < model::kByteValues;
  if (parallel && parallel->job) parallel->job->sum(&count, 1);
  r.bytes = count;
  if (count == 0) return r;

  net.zero_gradients();
  const std::int32_t* part_ids = ids;
  for (const MicroBatchPart& part : share.parts) {
    net.forward(part_ids, part.windows, true, dropout_seed(tc.seed, step, part.micro), part.row);
    r.loss_sum += net.backward(1.0f / static_cast<float>(count)).loss;
    part_ids += static_cast<std::size_t>(part.windows) * T;
  }
  backend::Backend& k = *net.backend();
  const model::ParameterView& view = net.view();
  const std::size_t n = net.parameters().buffer_size();
  const auto collective = [&](auto&& work, double bytes) {
    const auto t0 = std::chrono::steady_clock::now();
    work();
    k.synchronize();
    parallel->collective_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    parallel->collective_bytes += bytes;
  };
  if (parallel && parallel->collectives) {
    collective([&] { parallel->collectives->all_reduce_sum(view.grads, n); },
               static_cast<double>(n) * sizeof(float));
    parallel->job->sum(&r.loss_sum, 1);
  }
  // Every rank now holds the same gradients, so the same norm, clipping and update.
  r.grad_norm = tc.optimizer.grad_clip > 0
                    ? k.clip_grad_norm(view.grads, n, static_cast<float>(tc.optimizer.grad_clip))
                    : std::sqrt(k.grad_norm_squared(view.grads, n));
  r.lr = learning_rate(tc.optimizer, tc.steps, step);
  optimizer.step(net, tc.optimizer, r.lr, step + 1);
  if (parallel && parallel->sharding && parallel->collectives) {
    const dist::Range mine = optimizer.shard();
    collective([&] { parallel->collectives->all_gather(view.values, *parallel->sharding); },
               static_cast<double>(mine.size()) * sizeof(float));
    // The bf16 copies of the values the other ranks updated.
    if (view.values_bf16 && mine.begin > 0) k.to_bf16(view.values_bf16, view.values, mine.begin);
    if (view.values_bf16 && mine.end < n)
      k.to_bf16(view.values_bf16 + mine.end, view.values + mine.end, n - mine.end);
  }
  return r;
}

}  // namespace mb::train
