// Several samples of one prompt (megabyte-sample(1)), generated `batch` at a time side by side by
// one model::Generator: a step multiplies the rows of all of them by each weight matrix at once,
// which reads the weights once for the group (see model/generator.hpp).
//
// Sample i (from 1) draws its bytes from its own random stream, Rng(seed, i - 1). Rows of a
// group's generator past the samples still wanted (a last group smaller than the batch) are
// still generated, with the streams that follow, and dropped, so every group runs the same
// shapes: for one seed and one number of samples side by side, the samples are the same from
// run to run, and a run of fewer samples gives the first samples of a longer one. Side by side with
// others a sample agrees to rounding with the same sample generated alone (model/generator.hpp);
// that it is the same bytes is not promised.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "model/model.hpp"
#include "model/sampling.hpp"

namespace mb::train {

struct SampleOptions {
  int count = 1;  // samples to generate
  int batch = 8;  // of them side by side
  model::SamplingOptions sampling;
  std::uint64_t seed = 1;
  // Asked before every step; true stops generation, and the unfinished samples are dropped.
  std::function<bool()> interrupted;
  // After every step: the new bytes generated so far, over all samples.
  std::function<void(std::uint64_t)> progress;
  // Every new byte of every sample as soon as it is chosen (to stream a sample as it grows).
  std::function<void(int sample, std::uint8_t byte)> on_byte;
  // Every finished sample, prompt included, in order: sample 1 first, `count` last.
  std::function<void(int sample, const std::vector<std::uint8_t>& bytes)> on_sample;
};

// Sequences one generator runs side by side for these options.
inline int samples_side_by_side(const SampleOptions& options) {
  return std::min(options.count, options.batch);
}

struct SampleRun {
  int completed = 0;            // samples handed to on_sample
  std::uint64_t new_bytes = 0;  // bytes generated for the samples asked for (prompts excluded)
  bool interrupted = false;     // interrupted() stopped it
  std::size_t cache_bytes = 0;  // device memory of the generator: its KV caches, mostly
};

// Generates options.count samples of `length` bytes each (at most the model's context), all
// starting with `prompt` (at most `length` bytes). Throws mb::Error for a count or batch below
// one, bad sampling options, or a prompt or length that does not fit.
SampleRun generate_samples(const model::Model& model, std::span<const std::uint8_t> prompt,
                           int length, const SampleOptions& options);

}  // namespace mb::train
