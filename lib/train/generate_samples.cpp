#include "train/generate_samples.hpp"

#include <string>

#include "core/error.hpp"
#include "model/generator.hpp"

namespace mb::train {

namespace {

void check_request(const model::Model& model, std::size_t prompt, int length,
                   const SampleOptions& o) {
  if (o.count < 1)
    throw Error("-n", std::to_string(o.count) + " samples cannot be generated",
                "ask for one or more");
  if (o.batch < 1)
    throw Error("--batch", std::to_string(o.batch) + " samples cannot be generated side by side",
                "generate one or more at a time");
  model::validate_sampling(o.sampling, "sample");
  const int T = model.config().context;
  if (length > T)
    throw Error("sample",
                "a sample of " + std::to_string(length) +
                    " bytes does not fit the model's context of " + std::to_string(T) + " bytes",
                "ask for at most " + std::to_string(T) + " bytes, the prompt included");
  if (prompt > static_cast<std::size_t>(std::max(length, 0)))
    throw Error("sample",
                "the prompt of " + std::to_string(prompt) + " bytes is longer than the sample of " +
                    std::to_string(length) + " bytes it begins",
                "give a shorter prompt or ask for a longer sample");
}

}  // namespace

SampleRun generate_samples(const model::Model& model, std::span<const std::uint8_t> prompt,
                           int length, const SampleOptions& options) {
  check_request(model, prompt.size(), length, options);
  const int count = options.count;
  const int group_size = samples_side_by_side(options);
  const int new_bytes = length - static_cast<int>(prompt.size());
  model::Generator gen(model, group_size);
  std::vector<std::uint8_t> next(static_cast<std::size_t>(group_size));
  SampleRun run;
  run.cache_bytes = gen.device_bytes();
  for (int first = 1; first <= count; first += group_size) {
    // Samples first .. first+n-1.
    const int n = std::min(group_size, count - first + 1);
    gen.reset();
    for (std::uint8_t b : prompt) gen.feed(b);
    std::vector<model::Rng> rngs;  // sample i draws from its own stream: alone reproducible
    for (int j = 0; j < group_size; ++j)
      rngs.emplace_back(options.seed, static_cast<std::uint64_t>(first - 1 + j));
    for (int t = 0; t < new_bytes; ++t) {
      if (options.interrupted && options.interrupted()) {
        run.interrupted = true;
        return run;
      }
      const float* logits = gen.next_logits();
      for (int j = 0; j < group_size; ++j)
        next[j] = static_cast<std::uint8_t>(
            model::sample_index(logits + static_cast<std::size_t>(j) * model::kByteValues,
                                model::kByteValues, options.sampling, rngs[j]));
      gen.feed_each(next.data());
      run.new_bytes += static_cast<std::uint64_t>(n);
      if (options.on_byte)
        for (int j = 0; j < n; ++j) options.on_byte(first + j, next[j]);
      if (options.progress) options.progress(run.new_bytes);
    }
    for (int j = 0; j < n; ++j) {
      if (options.on_sample) options.on_sample(first + j, gen.bytes(j));
      ++run.completed;
    }
  }
  return run;
}

}  // namespace mb::train
