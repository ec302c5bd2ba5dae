#include "train/generation_benchmark.hpp"

#include <algorithm>
#include <chrono>
#include <vector>

#include "model/generator.hpp"
#include "model/load_model.hpp"
#include "model/model.hpp"

namespace mb::train {

namespace {

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int argmax(const float* logits) {
  return static_cast<int>(std::max_element(logits, logits + model::kByteValues) - logits);
}

}  // namespace

GenerationBenchmark benchmark_generation(std::shared_ptr<backend::Backend> backend,
                                         const model::Config& config, double seconds,
                                         int min_reforward,
                                         const std::filesystem::path& checkpoint_dir, int batch) {
  const int T = config.model.context;
  auto net = checkpoint_dir.empty()
                 ? model::init_model(config.model, config.train.seed, 1, std::move(backend))
                 : model::load_model(checkpoint_dir, config.model, 1, std::move(backend));
  GenerationBenchmark r;
  r.batch = batch;

  model::Generator gen(*net, batch);
  r.generator_bytes = gen.device_bytes();
  std::vector<std::uint8_t> next(static_cast<std::size_t>(batch));
  auto t0 = std::chrono::steady_clock::now();
  while (gen.position() < T && (gen.position() < 64 || since(t0) < seconds)) {
    const float* logits = gen.next_logits();
    for (int b = 0; b < batch; ++b)
      next[b] = static_cast<std::uint8_t>(
          argmax(logits + static_cast<std::size_t>(b) * model::kByteValues));
    gen.feed_each(next.data());
    r.cached_bytes += batch;
  }
  r.cached_seconds = since(t0);

  // Re-forward: the window holds the bytes so far, then pads; byte t is read from the logits
  // of position t. Begin where the cached run began, so both see the same prefix lengths.
  std::vector<std::int32_t> ids(T, model::kPadId);
  std::vector<float> logits(static_cast<std::size_t>(T) * model::kByteValues);
  t0 = std::chrono::steady_clock::now();
  while (r.reforward_bytes < T && (r.reforward_bytes < min_reforward || since(t0) < seconds)) {
    net->logits(logits.data(), ids.data(), 1);
    ids[r.reforward_bytes] = argmax(logits.data() + r.reforward_bytes * model::kByteValues);
    ++r.reforward_bytes;
  }
  r.reforward_seconds = since(t0);
  return r;
}

}  // namespace mb::train
