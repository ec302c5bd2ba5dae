#include "train/eval_benchmark.hpp"

#include <chrono>
#include <random>
#include <vector>

#include "model/load_model.hpp"
#include "model/model.hpp"
#include "train/flops.hpp"
#include "train/train_benchmark.hpp"

namespace mb::train {

namespace {

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

EvalBenchmark benchmark_eval(std::shared_ptr<backend::Backend> backend, const model::Config& config,
                             int batch, double seconds, int min_batches) {
  const int T = config.model.context;
  // The run's memory settings, as `megabyte eval` takes them: a window of a million bytes
  // needs its local chunks to fit, and the figure is that of the model users evaluate (for
  // inference only: no gradients, no saved activations).
  const backend::Device device = backend->device();
  auto net = model::init_model(config.model, config.train.seed, batch, std::move(backend),
                               model::inference_policy(config.model, config.train, device));
  backend::Backend& k = *net->backend();

  // Random bytes, no pads: every position is scored, as in the windows inside a document.
  std::vector<std::int32_t> ids(static_cast<std::size_t>(batch) * T);
  std::mt19937 gen(static_cast<std::uint32_t>(config.train.seed));
  for (auto& id : ids) id = static_cast<std::int32_t>(gen() & 0xFF);

  EvalBenchmark r;
  r.batch = batch;
  r.parameters = net->parameters().count();
  r.activation_bytes = net->activation_floats() * sizeof(float);
  r.bytes_per_batch = static_cast<double>(ids.size());
  r.flops_per_batch = forward_flops_per_window(config.model) * batch;
  r.device = k.description();
  (void)net->forward(ids.data(), batch, false, 0);  // warm-up: first-touch, JIT kernels
  k.synchronize();
  model::LossSum last;
  const auto t0 = std::chrono::steady_clock::now();
  // forward() returns once the losses are on the host, so each pass is whole when timed.
  while (r.batches < min_batches || since(t0) < seconds) {
    last = net->forward(ids.data(), batch, false, 0);
    ++r.batches;
  }
  k.synchronize();
  r.seconds = since(t0);
  r.loss = last.count > 0 ? last.loss / static_cast<double>(last.count) : 0.0;
  r.peak_rss_bytes = peak_rss_bytes();
  r.peak_device_bytes = k.peak_device_bytes();
  return r;
}

}  // namespace mb::train
