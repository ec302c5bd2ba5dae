#include "train/train_benchmark.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <vector>

#include "dist/collectives.hpp"
#include "dist/job.hpp"
#include "model/load_model.hpp"
#include "model/model.hpp"
#include "model/optimizer.hpp"
#include "train/flops.hpp"
#include "train/train_step.hpp"

namespace mb::train {

namespace {

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TrainBenchmark benchmark_training(const model::Config& config, double seconds, int min_steps,
                                  backend::Device device, backend::Precision precision) {
  const model::TrainConfig& tc = config.train;
  const int T = config.model.context;
  dist::Job& job = dist::Job::get();
  StepParallel parallel;
  parallel.share = share_step(tc.batch_size, tc.grad_accumulation, job.size(), job.rank());
  parallel.job = &job;
  if (device == backend::Device::cuda && !job.single())
    backend::select_cuda_device(job.local_rank(), job.who());
  auto net = model::init_model(
      config.model, tc.seed, std::min(tc.batch_size, parallel.share.windows),
      backend::make_backend(device, precision), model::activation_policy(config.model, tc));
  const dist::Sharding sharding(net->parameters().buffer_size(), tc.zero ? job.size() : 1);
  model::AdamW optimizer(*net, sharding.part(tc.zero ? job.rank() : 0));
  if (tc.zero) parallel.sharding = &sharding;
  const auto collectives = dist::make_collectives(job, *net->backend());
  parallel.collectives = collectives.get();
  backend::Backend& k = *net->backend();

  // Random bytes: the step's windows, of which this rank takes its own.
  std::vector<std::int32_t> ids(static_cast<std::size_t>(tc.grad_accumulation) * tc.batch_size * T);
  std::mt19937 gen(static_cast<std::uint32_t>(tc.seed));
  for (auto& id : ids) id = static_cast<std::int32_t>(gen() & 0xFF);
  const std::int32_t* own = ids.data() + static_cast<std::size_t>(parallel.share.first_window) * T;

  TrainBenchmark r;
  r.parameters = net->parameters().count();
  r.activation_bytes = net->activation_floats() * sizeof(float);
  r.flops_per_step = training_flops_per_step(config);
  r.bytes_per_step = static_cast<double>(ids.size());
  r.device = k.description();
  r.peak_bf16_flops = k.peak_bf16_flops();
  r.peak_fp32_flops = k.peak_fp32_flops();
  r.ranks = job.size();
  r.collectives = collectives->engine();
  (void)train_step(*net, optimizer, tc, own, 0, &parallel);  // warm-up: first-touch, JIT kernels
  k.synchronize();
  parallel.collective_seconds = parallel.collective_bytes = 0.0;
  job.barrier();
  const auto t0 = std::chrono::steady_clock::now();
  // The ranks decide together whether to go on, so they run the same number of steps.
  while (job.any(r.steps < min_steps || since(t0) < seconds)) {
    (void)train_step(*net, optimizer, tc, own, r.steps + 1, &parallel);
    ++r.steps;
  }
  k.synchronize();
  r.seconds = since(t0);
  r.collective_seconds_per_step = parallel.collective_seconds / r.steps;
  r.collective_bytes_per_step = parallel.collective_bytes / r.steps;
  r.peak_rss_bytes = peak_rss_bytes();
  r.peak_device_bytes = k.peak_device_bytes();
  return r;
}

double measure_sgemm_gflops(backend::Device device, backend::Precision precision, int n,
                            double seconds) {
  const auto k = backend::make_backend(device, precision);
  const std::size_t count = static_cast<std::size_t>(n) * n, bytes = count * sizeof(float);
  std::vector<float> host(count);
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (auto& x : host) x = dist(gen);
  backend::DeviceMemory a(*k, bytes), b(*k, bytes), out(*k, bytes);
  k->upload(a.get(), host.data(), bytes);
  k->upload(b.get(), host.data(), bytes);
  auto product = [&] {
    k->matmul_forward(out.as<float>(), a.as<float>(), b.as<float>(), nullptr, n, n, n);
  };
  product();  // warm-up (JIT, algorithm choice)
  k->synchronize();
  int reps = 0;
  const auto t0 = std::chrono::steady_clock::now();
  do {
    for (int i = 0; i < 4; ++i) product();  // several per check: a GPU queues them
    reps += 4;
    k->synchronize();
  } while (since(t0) < seconds);
  return 2.0 * n * static_cast<double>(n) * n * reps / since(t0) / 1e9;
}

std::size_t peak_rss_bytes() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<std::size_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

}  // namespace mb::train
