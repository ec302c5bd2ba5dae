// Samples generated in groups side by side (train::generate_samples): every sample complete and
// handed back in order, sample i drawn from its own stream Rng(seed, i - 1) (so the same seed
// and batch give the same samples, and fewer samples are the first of more), an interruption
// drops only the unfinished group, and requests that cannot be met are refused.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../unit/error_of.hpp"
#include "model/generator.hpp"
#include "model/sampling.hpp"
#include "model_fixtures.hpp"
#include "train/generate_samples.hpp"

using namespace mb::model;
using namespace mb::train;
using mb::test::contains;
using mb::test::error_of;

namespace {

using Bytes = std::vector<std::uint8_t>;

// A tiny MEGABYTE (T = 16, P = 4) with random weights: near-uniform logits, so that samples of
// different streams differ.
std::unique_ptr<Model> tiny_model(int batch = 4) {
  auto m = make_model(mt::tiny_megabyte(), batch);
  m->parameters().initialize(0.3f, 31);
  return m;
}

// Six bytes: the prompt ends inside the second patch.
const Bytes kPrompt = {'p', 'r', 'o', 'm', 'p', 't'};

// The samples of one call, in the order on_sample handed them over, and their numbers.
struct Collected {
  std::vector<int> numbers;
  std::vector<Bytes> samples;
  SampleRun run;
};

Collected collect(const Model& m, SampleOptions o, const Bytes& prompt = kPrompt, int length = 16) {
  Collected c;
  o.on_sample = [&](int i, const Bytes& bytes) {
    c.numbers.push_back(i);
    c.samples.push_back(bytes);
  };
  c.run = generate_samples(m, prompt, length, o);
  return c;
}

SampleOptions options(int count, int batch, std::uint64_t seed = 5) {
  SampleOptions o;
  o.count = count;
  o.batch = batch;
  o.seed = seed;
  return o;
}

}  // namespace

TEST_CASE(
    "generate_samples: every sample complete, starting with the prompt, handed back in order") {
  auto m = tiny_model();
  SampleOptions o = options(5, 2);  // groups of 2, 2 and 1
  std::vector<std::uint64_t> progress;
  std::vector<Bytes> streamed(6);
  o.progress = [&](std::uint64_t bytes) { progress.push_back(bytes); };
  o.on_byte = [&](int i, std::uint8_t b) { streamed.at(static_cast<std::size_t>(i)).push_back(b); };
  const Collected c = collect(*m, o);
  CHECK(c.numbers == std::vector<int>{1, 2, 3, 4, 5});
  CHECK(c.run.completed == 5);
  CHECK_FALSE(c.run.interrupted);
  CHECK(c.run.new_bytes == 5 * 10);
  for (int i = 0; i < 5; ++i) {
    INFO("sample " << i + 1);
    REQUIRE(c.samples[i].size() == 16);
    CHECK(Bytes(c.samples[i].begin(), c.samples[i].begin() + 6) == kPrompt);
    // Streamed byte by byte: the same new bytes.
    CHECK(streamed[i + 1] == Bytes(c.samples[i].begin() + 6, c.samples[i].end()));
  }
  // Progress after every step, counting the samples wanted (the last group's dropped row not).
  REQUIRE(progress.size() == 30);
  CHECK(progress[9] == 20);
  CHECK(progress[19] == 40);
  CHECK(progress.back() == 50);
}

TEST_CASE("generate_samples: sample i is what Rng(seed, i - 1) draws alone") {
  auto m = tiny_model();
  SamplingOptions sampling;
  sampling.temperature = 0.9f;
  sampling.top_k = 100;
  SampleOptions o = options(3, 1, 11);
  o.sampling = sampling;
  const Collected c = collect(*m, o);
  for (int i = 1; i <= 3; ++i) {
    INFO("sample " << i);
    Generator g(*m);
    for (std::uint8_t b : kPrompt) g.feed(b);
    Rng rng(11, static_cast<std::uint64_t>(i - 1));
    while (g.position() < 16)
      g.feed(static_cast<std::uint8_t>(sample_index(g.next_logits(), kByteValues, sampling, rng)));
    CHECK(g.bytes() == c.samples[i - 1]);
  }
}

TEST_CASE(
    "generate_samples: the same seed and batch give the same samples; fewer are the first of "
    "more") {
  auto m = tiny_model();
  const Collected a = collect(*m, options(5, 2));
  const Collected again = collect(*m, options(5, 2));
  CHECK(a.samples == again.samples);
  // Three samples two at a time are the first three of five two at a time: the third is
  // generated beside a dropped row drawn from the stream sample 4 draws from.
  const Collected three = collect(*m, options(3, 2));
  REQUIRE(three.samples.size() == 3);
  CHECK(std::equal(three.samples.begin(), three.samples.end(), a.samples.begin()));
  // Each sample its own stream; another seed, other samples.
  for (int i = 1; i < 5; ++i) CHECK(a.samples[i] != a.samples[0]);
  const Collected other = collect(*m, options(5, 2, 6));
  for (int i = 0; i < 5; ++i) CHECK(other.samples[i] != a.samples[i]);
}

TEST_CASE("generate_samples: an interruption keeps the finished groups and drops the rest") {
  auto m = tiny_model();
  SampleOptions o = options(5, 2);
  int asked = 0;
  o.interrupted = [&] { return ++asked > 15; };  // in the middle of the second group
  const Collected c = collect(*m, o);
  CHECK(c.run.interrupted);
  CHECK(c.run.completed == 2);
  CHECK(c.numbers == std::vector<int>{1, 2});
  CHECK(c.run.new_bytes == 2 * 10 + 2 * 5);
}

TEST_CASE("generate_samples: a sample as long as its prompt is the prompt") {
  auto m = tiny_model();
  SampleOptions o = options(2, 8);
  o.interrupted = [] { return true; };  // never asked: there is no step
  const Collected c = collect(*m, o, kPrompt, static_cast<int>(kPrompt.size()));
  CHECK_FALSE(c.run.interrupted);
  CHECK(c.samples == std::vector<Bytes>{kPrompt, kPrompt});
  CHECK(c.run.new_bytes == 0);
}

TEST_CASE("generate_samples: requests that cannot be met are refused") {
  auto m = tiny_model();
  const auto refused = [&](const SampleOptions& o, const Bytes& prompt, int length) {
    bool called = false;
    SampleOptions with = o;
    with.on_sample = [&](int, const Bytes&) { called = true; };
    const std::string e = error_of([&] { generate_samples(*m, prompt, length, with); });
    CHECK_FALSE(called);
    return e;
  };
  CHECK(contains(refused(options(0, 2), kPrompt, 16), "-n: 0 samples cannot be generated"));
  CHECK(contains(refused(options(2, 0), kPrompt, 16),
                 "--batch: 0 samples cannot be generated side by side"));
  CHECK(contains(refused(options(1, 1), kPrompt, 17),
                 "a sample of 17 bytes does not fit the model's context of 16 bytes"));
  CHECK(contains(refused(options(1, 1), Bytes(20, 'x'), 16),
                 "the prompt of 20 bytes is longer than the sample of 16 bytes it begins"));
  CHECK(contains(refused(options(1, 1), kPrompt, 5),
                 "the prompt of 6 bytes is longer than the sample of 5 bytes"));
  SampleOptions bad = options(1, 1);
  bad.sampling.top_p = 0.0f;
  CHECK(contains(refused(bad, kPrompt, 16), "top-p"));
}
