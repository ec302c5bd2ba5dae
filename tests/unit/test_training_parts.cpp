// The parts of training that are not the model: the window sampler (windows inside their
// document, padding, determinism, exact resume, epochs, size-weighted draws), the learning-rate
// schedule against the formula in its header, checkpoint directories (exact round trip,
// listing, pruning, resolving, refusing other files, models and format versions) and plain
// evaluation (every byte scored once, the loss of the windows built by hand, max_bytes).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "error_of.hpp"
#include "core/error.hpp"
#include "core/thread_pool.hpp"
#include "data/dataset.hpp"
#include "data/dataset_writer.hpp"
#include "model/checkpoint.hpp"
#include "model/config.hpp"
#include "model/model.hpp"
#include "model/safetensors.hpp"
#include "temp_dir.hpp"
#include "train/evaluate.hpp"
#include "train/metrics_log.hpp"
#include "train/lr_schedule.hpp"
#include "train/window_sampler.hpp"

namespace fs = std::filesystem;
using mb::test::TempDir;

namespace {

using mb::test::contains;
using mb::test::error_of;

using Bytes = std::vector<std::uint8_t>;

// Documents of the given sizes, random bytes (every value, 0 included), reproducible.
std::vector<Bytes> random_documents(const std::vector<std::size_t>& sizes, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Bytes> docs;
  for (std::size_t n : sizes) {
    Bytes d(n);
    for (auto& b : d) b = static_cast<std::uint8_t>(rng());
    docs.push_back(std::move(d));
  }
  return docs;
}

// A dataset written by the real writer (small shards and frames, so that documents spread over
// several of each) with `train` and `validation` documents, opened.
struct SmallDataset {
  TempDir tmp;
  fs::path dir;
  std::vector<Bytes> train, validation;
  mb::data::Dataset dataset;

  SmallDataset(const char* name, std::vector<Bytes> train_docs, std::vector<Bytes> val_docs = {})
      : tmp(name), dir(tmp.path / "ds"), train(std::move(train_docs)), validation(std::move(val_docs)),
        dataset(write_and_open(dir, train, validation)) {}
  SmallDataset(const SmallDataset&) = delete;
  SmallDataset& operator=(const SmallDataset&) = delete;

  const mb::data::SplitReader& split(const char* name) const { return dataset.split(name); }

  static std::string doc_name(char split, std::size_t i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%c%zu", split, i);
    return buf;
  }

  static mb::data::Dataset write_and_open(const fs::path& dir, const std::vector<Bytes>& train,
                                          const std::vector<Bytes>& validation) {
    {
      mb::ThreadPool pool(2);
      mb::data::DatasetWriterOptions opt;
      opt.shard_bytes = 4000;
      opt.shard.frame_bytes = 256;
      mb::data::DatasetWriter w(dir, mb::data::EncoderParams{}, opt, pool);
      for (std::size_t i = 0; i < train.size(); ++i)
        w.add_document(mb::data::Split::train, doc_name('t', i), train[i]);
      for (std::size_t i = 0; i < validation.size(); ++i)
        w.add_document(mb::data::Split::validation, doc_name('v', i), validation[i]);
      w.commit();
    }
    return mb::data::Dataset::open(dir);
  }
};

std::uint64_t total_bytes(const std::vector<Bytes>& docs) {
  std::uint64_t n = 0;
  for (const auto& d : docs) n += d.size();
  return n;
}

bool same_window(const mb::train::Window& a, const mb::train::Window& b) {
  return a.document == b.document && a.offset == b.offset && a.length == b.length;
}

std::vector<mb::train::Window> draw(mb::train::WindowSampler& s, int n) {
  std::vector<mb::train::Window> out;
  for (int i = 0; i < n; ++i) out.push_back(s.next());
  return out;
}

bool same_windows(const std::vector<mb::train::Window>& a, const std::vector<mb::train::Window>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), same_window);
}

// The tiny MEGABYTE of the brief: T = 16, P = 4, global {4, 1, 2}, local {8, 1, 2}.
mb::model::ModelConfig tiny_model_config() {
  mb::model::ModelConfig c;
  c.kind = mb::model::ModelKind::megabyte;
  c.context = 16;
  c.patch_size = 4;
  c.global = {4, 1, 2};
  c.local = {8, 1, 2};
  return c;
}

// The defaults with the tiny model section: a config that parse_config accepts.
mb::model::Config tiny_config() {
  mb::model::Config c;
  c.model = tiny_model_config();
  return c;
}

std::unique_ptr<mb::model::Model> tiny_model(std::uint64_t seed, int max_batch = 2,
                                             mb::model::ModelConfig config = tiny_model_config()) {
  auto m = mb::model::make_model(config, max_batch);
  m->parameters().initialize(0.02f, seed);
  return m;
}

// Bit-for-bit equality of two float buffers (so -0.0 != 0.0 and NaN payloads count).
bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Moments laid out like `params`: awkward values inside the tensors (negative zero, a
// subnormal, the largest float, random ones), zero in the alignment padding, as the loader
// leaves it.
std::vector<float> moments_like(const mb::model::ParameterSet& params, std::uint32_t seed) {
  std::vector<float> out(params.buffer_size(), 0.0f);
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const float special[] = {-0.0f, std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::max(),
                           -std::numeric_limits<float>::min(), 1e-30f};
  for (const auto& t : params.tensors())
    for (std::size_t i = 0; i < t.size; ++i)
      out[t.offset + i] = i < std::size(special) ? special[i] : normal(gen);
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// WindowSampler

TEST_CASE("WindowSampler: every window lies inside its document and is min(size, T) long") {
  // Empty documents at the start, in the middle and at the end; documents shorter than T, of
  // exactly T, just over T and much longer.
  const std::vector<std::size_t> sizes = {0, 5, 16, 17, 0, 100, 1000, 3, 0, 0};
  SmallDataset ds("tp-sampler-inside", random_documents(sizes, 1));
  const auto& split = ds.split("train");
  const int T = 16;
  mb::train::WindowSampler s(split, T, 7);
  std::map<std::uint64_t, std::uint64_t> max_offset;
  std::map<std::uint64_t, int> offsets_of_17;
  for (int i = 0; i < 20000; ++i) {
    const mb::train::Window w = s.next();
    REQUIRE(w.document < sizes.size());
    const std::uint64_t size = sizes[w.document];
    INFO("draw " << i << ": document " << w.document << " (" << size << " bytes), offset " << w.offset
                 << ", length " << w.length);
    REQUIRE(size > 0);
    REQUIRE(w.length == std::min<std::uint64_t>(size, T));
    REQUIRE(w.offset + w.length <= size);
    max_offset[w.document] = std::max(max_offset[w.document], w.offset);
    if (size == 17) ++offsets_of_17[w.offset];
  }
  // Every offset that fits is drawn, the last one (size - T) included.
  CHECK(max_offset[1] == 0);
  CHECK(max_offset[2] == 0);
  CHECK(offsets_of_17.size() == 2);
  CHECK(offsets_of_17[0] > 0);
  CHECK(offsets_of_17[1] > 0);
  CHECK(max_offset[5] == 100 - T);
  CHECK(max_offset[6] == 1000 - T);
}

TEST_CASE("WindowSampler: read() gives the window's bytes, then the pad id up to T") {
  SmallDataset ds("tp-sampler-read", random_documents({5, 40}, 2));
  const auto& split = ds.split("train");
  const int T = 16;
  mb::train::WindowSampler s(split, T, 3);
  int short_seen = 0, long_seen = 0;
  for (int i = 0; i < 200; ++i) {
    const mb::train::Window w = s.next();
    std::vector<std::int32_t> ids(T + 1, -7);   // one sentinel past the end
    s.read(w, ids.data());
    CHECK(ids[T] == -7);
    const Bytes& doc = ds.train[w.document];
    std::vector<std::int32_t> expected(T, mb::model::kPadId);
    for (std::uint64_t k = 0; k < w.length; ++k) expected[k] = doc[w.offset + k];
    ids.resize(T);
    CHECK(ids == expected);
    (w.document == 0 ? short_seen : long_seen)++;
  }
  REQUIRE(short_seen > 0);
  REQUIRE(long_seen > 0);
  // The short document exactly: its 5 bytes, then 11 pads (256, not a byte value).
  mb::train::Window w{0, 0, 5};
  std::vector<std::int32_t> ids(T);
  s.read(w, ids.data());
  for (int k = 0; k < 5; ++k) CHECK(ids[k] == ds.train[0][k]);
  for (int k = 5; k < T; ++k) CHECK(ids[k] == 256);
  CHECK(mb::model::kPadId == 256);
}

TEST_CASE("WindowSampler: the same seed draws the same windows, another seed other windows") {
  SmallDataset ds("tp-sampler-seed", random_documents({300, 17, 1000, 64, 9, 500}, 3));
  const auto& split = ds.split("train");
  mb::train::WindowSampler a(split, 16, 42), b(split, 16, 42), c(split, 16, 43);
  const auto wa = draw(a, 300), wb = draw(b, 300), wc = draw(c, 300);
  CHECK(same_windows(wa, wb));
  CHECK_FALSE(same_windows(wa, wc));
  int differ = 0;
  for (std::size_t i = 0; i < wa.size(); ++i) differ += same_window(wa[i], wc[i]) ? 0 : 1;
  CHECK(differ > 200);   // not one window off: another sequence
  CHECK(a.position() == b.position());
}

TEST_CASE("WindowSampler: window_at(position) is what next() returns there, and set_position resumes") {
  SmallDataset ds("tp-sampler-resume", random_documents({300, 17, 1000, 64, 9, 500}, 4));
  const auto& split = ds.split("train");
  mb::train::WindowSampler s(split, 16, 5);
  const std::uint64_t per_epoch = s.windows_per_epoch();
  for (int i = 0; i < 300; ++i) {
    const mb::train::SamplerPosition p = s.position();
    const mb::train::Window at = s.window_at(p);
    CHECK(s.position() == p);   // window_at does not move the sampler
    CHECK(same_window(at, s.next()));
  }
  CHECK(s.position().epoch == 300 / per_epoch);

  // A run interrupted after 137 windows, its position saved, resumed in a fresh sampler.
  mb::train::WindowSampler run(split, 16, 5);
  draw(run, 137);
  const mb::train::SamplerPosition saved = run.position();
  const auto continuation = draw(run, 250);
  mb::train::WindowSampler resumed(split, 16, 5);
  resumed.set_position(saved);
  CHECK(resumed.position() == saved);
  CHECK(same_windows(draw(resumed, 250), continuation));
  CHECK(resumed.position() == run.position());
  // ... and the fresh sampler does not reproduce it without the position.
  mb::train::WindowSampler fresh(split, 16, 5);
  CHECK_FALSE(same_windows(draw(fresh, 250), continuation));
  // Setting the position back replays the same windows in the same sampler.
  run.set_position(saved);
  CHECK(same_windows(draw(run, 250), continuation));
}

TEST_CASE("WindowSampler: an epoch is ceil(bytes / T) windows, then the position wraps into epoch 1") {
  std::vector<std::size_t> sizes;
  std::uint64_t expected_per_epoch = 0;
  SUBCASE("bytes not a multiple of T") {
    sizes = {300, 17, 1000, 64, 9, 500};   // 1890 bytes: 118.125 windows of 16
    expected_per_epoch = 119;
  }
  SUBCASE("bytes a multiple of T") {
    sizes = {100, 60, 0, 160};   // 320 bytes: 20 windows of 16
    expected_per_epoch = 20;
  }
  SUBCASE("fewer bytes than T") {
    sizes = {3, 0, 4};
    expected_per_epoch = 1;
  }
  SmallDataset ds("tp-sampler-epoch", random_documents(sizes, 5));
  const auto& split = ds.split("train");
  REQUIRE(split.bytes() == total_bytes(ds.train));
  mb::train::WindowSampler s(split, 16, 9);
  REQUIRE(s.windows_per_epoch() == expected_per_epoch);
  CHECK(s.position() == mb::train::SamplerPosition{0, 0});
  for (std::uint64_t i = 0; i + 1 < expected_per_epoch; ++i) s.next();
  CHECK(s.position() == mb::train::SamplerPosition{0, expected_per_epoch - 1});
  s.next();
  CHECK(s.position() == mb::train::SamplerPosition{1, 0});
  for (std::uint64_t i = 0; i < expected_per_epoch; ++i) s.next();
  CHECK(s.position() == mb::train::SamplerPosition{2, 0});

  // Epoch 1 draws other windows than epoch 0 (checked where there is room for them to differ).
  if (expected_per_epoch > 1) {
    std::vector<mb::train::Window> e0, e1;
    for (std::uint64_t i = 0; i < expected_per_epoch; ++i) {
      e0.push_back(s.window_at({0, i}));
      e1.push_back(s.window_at({1, i}));
    }
    CHECK_FALSE(same_windows(e0, e1));
  }
}

TEST_CASE("WindowSampler: documents are drawn in proportion to their size") {
  SmallDataset ds("tp-sampler-weights", random_documents({1000, 9000}, 6));
  mb::train::WindowSampler s(ds.split("train"), 100, 11);
  CHECK(s.windows_per_epoch() == 100);
  int big = 0;
  const int draws = 20000;
  for (int i = 0; i < draws; ++i) big += s.next().document == 1 ? 1 : 0;
  const double share = static_cast<double>(big) / draws;
  INFO("the 9,000-byte document was drawn " << big << " times of " << draws);
  CHECK(share > 0.88);
  CHECK(share < 0.92);
}

TEST_CASE("WindowSampler: empty documents are never drawn") {
  // Empty documents everywhere: first, between, several in a row, last.
  const std::vector<std::size_t> sizes = {0, 0, 7, 0, 1, 0, 0, 0, 30, 0};
  SmallDataset ds("tp-sampler-empty-docs", random_documents(sizes, 7));
  mb::train::WindowSampler s(ds.split("train"), 8, 13);
  std::map<std::uint64_t, int> count;
  for (int i = 0; i < 5000; ++i) ++count[s.next().document];
  for (const auto& [doc, n] : count) {
    INFO("document " << doc << " drawn " << n << " times");
    CHECK(sizes.at(doc) > 0);
  }
  CHECK(count.size() == 3);   // and every non-empty one is
}

TEST_CASE("WindowSampler: a split that holds no bytes is refused") {
  SUBCASE("no documents at all") {
    SmallDataset ds("tp-sampler-nothing", {}, random_documents({10}, 8));
    REQUIRE(ds.split("train").documents() == 0);
    const std::string msg = error_of([&] { mb::train::WindowSampler(ds.split("train"), 16, 1); });
    CHECK(contains(msg, "holds no bytes"));
    CHECK(contains(msg, "train"));
  }
  SUBCASE("only empty documents") {
    SmallDataset ds("tp-sampler-all-empty", random_documents({0, 0, 0}, 8));
    REQUIRE(ds.split("train").documents() == 3);
    const std::string msg = error_of([&] { mb::train::WindowSampler(ds.split("train"), 16, 1); });
    CHECK(contains(msg, "holds no bytes"));
  }
}

// ---------------------------------------------------------------------------------------------
// learning_rate

TEST_CASE("learning-rate schedule: linear warm-up from lr/warmup, the peak at the first step after it") {
  mb::model::OptimizerConfig opt;
  opt.lr = 3e-4;
  opt.warmup_steps = 100;
  opt.decay_power = 1.0;
  const std::int64_t steps = 1100;
  using mb::train::learning_rate;
  CHECK(learning_rate(opt, steps, 0) == doctest::Approx(3e-6).epsilon(1e-12));
  CHECK(learning_rate(opt, steps, 0) > 0.0);
  for (std::int64_t s = 0; s < 100; ++s) {
    INFO("step " << s);
    CHECK(learning_rate(opt, steps, s) == doctest::Approx(3e-4 * static_cast<double>(s + 1) / 100.0).epsilon(1e-12));
  }
  // Linear: equal increments.
  const double d1 = learning_rate(opt, steps, 1) - learning_rate(opt, steps, 0);
  const double d2 = learning_rate(opt, steps, 50) - learning_rate(opt, steps, 49);
  CHECK(d1 == doctest::Approx(d2).epsilon(1e-9));
  CHECK(learning_rate(opt, steps, 99) == doctest::Approx(3e-4).epsilon(1e-12));
  CHECK(learning_rate(opt, steps, 100) == 3e-4);   // the peak, exactly
  for (std::int64_t s = 0; s < steps; ++s) CHECK_LE(learning_rate(opt, steps, s), 3e-4);
}

TEST_CASE("learning-rate schedule: polynomial decay after warm-up, positive at the last step, never negative") {
  mb::model::OptimizerConfig opt;
  opt.lr = 1e-3;
  opt.warmup_steps = 100;
  const std::int64_t steps = 1100;   // 1000 decay steps
  using mb::train::learning_rate;
  // lr · (1 - (step - warmup) / (steps - warmup))^power
  auto formula = [&](std::int64_t step, double power) {
    return 1e-3 * std::pow(1.0 - static_cast<double>(step - 100) / 1000.0, power);
  };
  for (double power : {1.0, 2.0, 0.5}) {
    opt.decay_power = power;
    INFO("decay_power " << power);
    for (std::int64_t s : {100, 101, 350, 600, 850, 1099})
      CHECK(learning_rate(opt, steps, s) == doctest::Approx(formula(s, power)).epsilon(1e-12));
    CHECK(learning_rate(opt, steps, steps - 1) > 0.0);
    double previous = learning_rate(opt, steps, 100);
    for (std::int64_t s = 0; s < steps + 10; ++s) {
      const double lr = learning_rate(opt, steps, s);
      CHECK_GE(lr, 0.0);
      if (s > 100) {
        CHECK_LE(lr, previous);   // decays monotonically
        previous = lr;
      }
    }
  }
  // The midpoints by hand: half the peak for power 1, a quarter for power 2.
  opt.decay_power = 1.0;
  CHECK(learning_rate(opt, steps, 600) == doctest::Approx(5e-4).epsilon(1e-12));
  opt.decay_power = 2.0;
  CHECK(learning_rate(opt, steps, 600) == doctest::Approx(2.5e-4).epsilon(1e-12));
  CHECK(learning_rate(opt, steps, steps - 1) == doctest::Approx(1e-3 * 1e-6).epsilon(1e-9));
}

TEST_CASE("learning-rate schedule: warmup_steps = 0 starts at the peak") {
  mb::model::OptimizerConfig opt;
  opt.lr = 2e-4;
  opt.warmup_steps = 0;
  opt.decay_power = 1.0;
  using mb::train::learning_rate;
  CHECK(learning_rate(opt, 10, 0) == 2e-4);
  CHECK(learning_rate(opt, 10, 5) == doctest::Approx(1e-4).epsilon(1e-12));
  CHECK(learning_rate(opt, 10, 9) == doctest::Approx(2e-5).epsilon(1e-12));
  for (std::int64_t s = 0; s < 12; ++s) {
    const double lr = learning_rate(opt, 10, s);
    CHECK(std::isfinite(lr));
    CHECK_GE(lr, 0.0);
  }
  // One step in all: taken at the peak.
  CHECK(learning_rate(opt, 1, 0) == 2e-4);
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

namespace {

// A run directory with one saved checkpoint of the tiny model, and what was saved.
struct SavedRun {
  TempDir tmp;
  fs::path run;
  mb::model::Config config = tiny_config();
  std::unique_ptr<mb::model::Model> model = tiny_model(17, 1);
  std::vector<float> m, v;
  mb::model::TrainingState state;
  fs::path checkpoint;

  explicit SavedRun(const char* name) : tmp(name), run(tmp.path / "run") {
    m = moments_like(model->parameters(), 1);
    v = moments_like(model->parameters(), 2);
    state.step = 1234;
    state.sampler_epoch = 5;
    state.sampler_index = 0xFFFFFFFFFFFFFFF0ull;   // needs all 64 bits
    checkpoint = mb::model::save_checkpoint(run, config, model->parameters(), m, v, state);
  }
  fs::path save(std::int64_t step) {
    mb::model::TrainingState s = state;
    s.step = step;
    return mb::model::save_checkpoint(run, config, model->parameters(), m, v, s);
  }
};

// Rewrites `file` (a checkpoint's model.safetensors or optimizer.safetensors) with the same
// tensors and its metadata changed by `edit`.
template <class Edit>
void rewrite_metadata(const fs::path& file, Edit edit) {
  std::vector<std::vector<float>> data;
  std::vector<mb::model::TensorRef> refs;
  std::map<std::string, std::string> meta;
  {
    const auto f = mb::model::SafetensorsFile::open(file);
    meta = f.metadata();
    for (const auto& e : f.tensors()) {
      std::size_t n = 1;
      for (auto d : e.shape) n *= static_cast<std::size_t>(d);
      data.emplace_back(n);
      f.read_f32(e.name, e.shape, data.back().data());
    }
    for (std::size_t i = 0; i < f.tensors().size(); ++i)
      refs.push_back({f.tensors()[i].name, f.tensors()[i].shape, data[i].data()});
  }
  edit(meta);
  mb::model::write_safetensors(file, refs, meta);
}

}  // namespace

TEST_CASE("checkpoint: save then load round-trips the weights, the moments and the state bit for bit") {
  SavedRun r("tp-ckpt-roundtrip");
  CHECK(r.checkpoint == r.run / "checkpoints" / "step-00001234");
  CHECK(fs::is_regular_file(r.checkpoint / "model.safetensors"));
  CHECK(fs::is_regular_file(r.checkpoint / "optimizer.safetensors"));

  auto loaded = mb::model::make_model(tiny_model_config(), 1);   // zero weights
  REQUIRE_FALSE(same_bits(loaded->parameters().values(), r.model->parameters().values()));
  mb::model::load_weights(r.checkpoint, loaded->parameters());
  CHECK(same_bits(loaded->parameters().values(), r.model->parameters().values()));

  std::vector<float> m{1.0f}, v;   // replaced, whatever they held
  const mb::model::TrainingState s = mb::model::load_optimizer_state(r.checkpoint, loaded->parameters(), m, v);
  CHECK(same_bits(m, r.m));
  CHECK(same_bits(v, r.v));
  CHECK_FALSE(same_bits(m, v));
  CHECK(s == r.state);
  CHECK(s.step == 1234);
  CHECK(s.sampler_epoch == 5);
  CHECK(s.sampler_index == 0xFFFFFFFFFFFFFFF0ull);

  // The loaded model computes what the saved one does.
  std::vector<std::int32_t> ids(16);
  for (int i = 0; i < 16; ++i) ids[i] = (i * 37) % 256;
  CHECK(loaded->forward(ids.data(), 1, false, 0).loss == r.model->forward(ids.data(), 1, false, 0).loss);
}

TEST_CASE("checkpoint: the dataset's layout is recorded for image and audio models") {
  SavedRun r("tp-ckpt-encoder");
  CHECK_FALSE(mb::model::read_checkpoint_info(r.checkpoint).has_encoder);   // none given
  mb::data::EncoderParams text;   // text has no layout to record
  CHECK_FALSE(mb::model::read_checkpoint_info(
      mb::model::save_checkpoint(r.run, r.config, r.model->parameters(), r.m, r.v, r.state, &text)).has_encoder);

  r.config.data.modality = mb::data::Modality::image;
  mb::data::EncoderParams image;
  image.modality = mb::data::Modality::image;
  image.image.image_size = 40;
  image.image.patch_size = 48;
  r.state.step = 2;
  const auto ci = mb::model::read_checkpoint_info(
      mb::model::save_checkpoint(r.run, r.config, r.model->parameters(), r.m, r.v, r.state, &image));
  CHECK(ci.has_encoder);
  CHECK(ci.encoder.modality == mb::data::Modality::image);
  CHECK(ci.encoder.image.image_size == 40);
  CHECK(ci.encoder.image.patch_size == 48);

  r.config.data.modality = mb::data::Modality::audio;
  mb::data::EncoderParams audio;
  audio.modality = mb::data::Modality::audio;
  audio.audio.sample_rate = 22050;
  r.state.step = 3;
  const auto ca = mb::model::read_checkpoint_info(
      mb::model::save_checkpoint(r.run, r.config, r.model->parameters(), r.m, r.v, r.state, &audio));
  CHECK(ca.has_encoder);
  CHECK(ca.encoder.audio.sample_rate == 22050);
}

TEST_CASE("checkpoint: read_checkpoint_info gives the saved config and step") {
  SavedRun r("tp-ckpt-info");
  for (bool verify : {true, false}) {
    const mb::model::CheckpointInfo info = mb::model::read_checkpoint_info(r.checkpoint, verify);
    CHECK(info.config == r.config);
    CHECK(info.config.model == tiny_model_config());
    CHECK(info.step == 1234);
  }
  // A config other than the defaults in the train section too.
  r.config.train.steps = 77;
  r.config.train.optimizer.warmup_steps = 7;
  r.config.train.optimizer.lr = 1.5e-3;
  const fs::path p = r.save(9);
  const mb::model::CheckpointInfo info = mb::model::read_checkpoint_info(p);
  CHECK(info.config == r.config);
  CHECK(info.step == 9);
}

TEST_CASE("checkpoint: list_checkpoints is ordered by step and ignores incomplete directories") {
  SavedRun r("tp-ckpt-list");   // step 1234
  const fs::path ckpts = r.run / "checkpoints";
  r.save(99999999);
  r.save(100000000);   // 9 digits: after 99999999 by step, before it by name
  r.save(30);
  r.save(5);
  // A staging directory (as AtomicDirectory names them, and one with a suffix), both complete.
  fs::copy(ckpts / "step-00000005", ckpts / ".step-00000200.partial-1234");
  fs::copy(ckpts / "step-00000005", ckpts / "step-00000300.partial");
  // A step directory without its optimizer state; another without its weights.
  fs::create_directories(ckpts / "step-00000400");
  fs::copy_file(ckpts / "step-00000005" / "model.safetensors", ckpts / "step-00000400" / "model.safetensors");
  fs::create_directories(ckpts / "step-00000500");
  fs::copy_file(ckpts / "step-00000005" / "optimizer.safetensors", ckpts / "step-00000500" / "optimizer.safetensors");
  // A file with a step name.
  std::ofstream(ckpts / "step-00000600") << "x";

  const std::vector<fs::path> expected = {ckpts / "step-00000005", ckpts / "step-00000030", ckpts / "step-00001234",
                                          ckpts / "step-99999999", ckpts / "step-100000000"};
  CHECK(mb::model::list_checkpoints(r.run) == expected);
  // The newest is what a run directory resolves to.
  CHECK(mb::model::resolve_checkpoint(r.run) == ckpts / "step-100000000");

  // A run without checkpoints lists none.
  TempDir empty("tp-ckpt-list-empty");
  CHECK(mb::model::list_checkpoints(empty.path).empty());
  CHECK(mb::model::list_checkpoints(empty.path / "nowhere").empty());
}

TEST_CASE("checkpoint: saving a step again replaces it") {
  SavedRun r("tp-ckpt-replace");
  r.model->parameters().initialize(0.02f, 999);
  r.save(1234);
  CHECK(mb::model::list_checkpoints(r.run).size() == 1);
  auto loaded = mb::model::make_model(tiny_model_config(), 1);
  mb::model::load_weights(r.checkpoint, loaded->parameters());
  CHECK(same_bits(loaded->parameters().values(), r.model->parameters().values()));
}

TEST_CASE("checkpoint: prune_checkpoints keeps the newest N") {
  SavedRun r("tp-ckpt-prune");   // step 1234
  const fs::path ckpts = r.run / "checkpoints";
  for (std::int64_t s : {10, 2000, 500, 20}) r.save(s);
  fs::copy(ckpts / "step-00000010", ckpts / ".step-00000001.partial-1");   // not a checkpoint
  REQUIRE(mb::model::list_checkpoints(r.run).size() == 5);
  mb::model::prune_checkpoints(r.run, 10);
  CHECK(mb::model::list_checkpoints(r.run).size() == 5);
  mb::model::prune_checkpoints(r.run, 5);
  CHECK(mb::model::list_checkpoints(r.run).size() == 5);
  mb::model::prune_checkpoints(r.run, 2);
  const std::vector<fs::path> expected = {ckpts / "step-00001234", ckpts / "step-00002000"};
  CHECK(mb::model::list_checkpoints(r.run) == expected);
  for (const char* gone : {"step-00000010", "step-00000020", "step-00000500"}) {
    INFO(gone);
    CHECK_FALSE(fs::exists(ckpts / gone));
  }
  CHECK(fs::exists(ckpts / ".step-00000001.partial-1"));   // only checkpoints are pruned
  mb::model::prune_checkpoints(r.run, 1);
  CHECK(mb::model::list_checkpoints(r.run) == std::vector<fs::path>{ckpts / "step-00002000"});
  // The kept one still loads.
  auto loaded = mb::model::make_model(tiny_model_config(), 1);
  mb::model::load_weights(ckpts / "step-00002000", loaded->parameters());
  CHECK(same_bits(loaded->parameters().values(), r.model->parameters().values()));
}

TEST_CASE("checkpoint: resolve_checkpoint takes a run, a checkpoint directory or its files") {
  SavedRun r("tp-ckpt-resolve");   // step 1234
  const fs::path newest = r.save(5000);
  r.save(7);
  CHECK(mb::model::resolve_checkpoint(r.run) == newest);
  CHECK(mb::model::resolve_checkpoint(r.checkpoint) == r.checkpoint);
  CHECK(mb::model::resolve_checkpoint(r.checkpoint / "model.safetensors") == r.checkpoint);
  CHECK(mb::model::resolve_checkpoint(r.checkpoint / "optimizer.safetensors") == r.checkpoint);

  SUBCASE("a missing path") {
    const fs::path nowhere = r.tmp.path / "no-such-run";
    const std::string msg = error_of([&] { mb::model::resolve_checkpoint(nowhere); });
    CHECK(contains(msg, nowhere.string()));
    CHECK(contains(msg, "no such checkpoint"));
  }
  SUBCASE("a run directory without a checkpoint") {
    const fs::path run = r.tmp.path / "fresh-run";
    fs::create_directories(run / "checkpoints" / "step-00000001");   // incomplete
    const std::string msg = error_of([&] { mb::model::resolve_checkpoint(run); });
    CHECK(contains(msg, run.string()));
    CHECK(contains(msg, "no complete checkpoint"));
  }
  SUBCASE("some other file") {
    const fs::path other = r.tmp.path / "notes.txt";
    std::ofstream(other) << "hello\n";
    const std::string msg = error_of([&] { mb::model::resolve_checkpoint(other); });
    CHECK(contains(msg, other.string()));
    CHECK(contains(msg, "not a checkpoint"));
  }
  SUBCASE("another safetensors file") {
    const fs::path other = r.checkpoint / "extra.safetensors";
    fs::copy_file(r.checkpoint / "model.safetensors", other);
    CHECK(contains(error_of([&] { mb::model::resolve_checkpoint(other); }), "not a checkpoint"));
  }
}

TEST_CASE("checkpoint: weights of another config are refused, naming the tensor") {
  SavedRun r("tp-ckpt-other-model");
  SUBCASE("another local.dim: same tensors, other shapes") {
    mb::model::ModelConfig other = tiny_model_config();
    other.local.dim = 12;
    auto m = mb::model::make_model(other, 1);
    const std::string msg = error_of([&] { mb::model::load_weights(r.checkpoint, m->parameters()); });
    INFO(msg);
    CHECK(contains(msg, (r.checkpoint / "model.safetensors").string()));
    CHECK(contains(msg, "tensor '"));
    CHECK(contains(msg, "has shape"));
    std::vector<float> mm, vv;
    const std::string opt_msg =
        error_of([&] { mb::model::load_optimizer_state(r.checkpoint, m->parameters(), mm, vv); });
    INFO(opt_msg);
    CHECK(contains(opt_msg, "has shape"));
  }
  SUBCASE("another kind: other tensors") {
    mb::model::ModelConfig other;
    other.kind = mb::model::ModelKind::transformer;
    other.context = 16;
    other.patch_size = 1;
    other.global = {16, 1, 2};
    auto m = mb::model::make_model(other, 1);
    const std::string msg = error_of([&] { mb::model::load_weights(r.checkpoint, m->parameters()); });
    INFO(msg);
    CHECK(contains(msg, (r.checkpoint / "model.safetensors").string()));
    CHECK((contains(msg, "tensors, the model has") || contains(msg, "no tensor named")));
  }
  SUBCASE("another global.layers: more tensors than the file holds") {
    mb::model::ModelConfig other = tiny_model_config();
    other.global.layers = 2;
    auto m = mb::model::make_model(other, 1);
    const std::string msg = error_of([&] { mb::model::load_weights(r.checkpoint, m->parameters()); });
    INFO(msg);
    CHECK(contains(msg, "tensors, the model has"));
  }
}

TEST_CASE("checkpoint: a file of another format, or of format version 2, is refused") {
  SavedRun r("tp-ckpt-format");
  const fs::path model_file = r.checkpoint / "model.safetensors";
  const fs::path opt_file = r.checkpoint / "optimizer.safetensors";
  auto weights = [&] {
    auto m = mb::model::make_model(tiny_model_config(), 1);
    mb::model::load_weights(r.checkpoint, m->parameters());
  };
  auto info = [&] { (void)mb::model::read_checkpoint_info(r.checkpoint); };
  auto optimizer = [&] {
    std::vector<float> m, v;
    (void)mb::model::load_optimizer_state(r.checkpoint, r.model->parameters(), m, v);
  };
  // Baseline: all three load before the edits.
  CHECK_NOTHROW(weights());
  CHECK_NOTHROW(info());
  CHECK_NOTHROW(optimizer());

  SUBCASE("another format") {
    rewrite_metadata(model_file, [](auto& meta) { meta.insert_or_assign("format", std::string("some-other-format")); });
    rewrite_metadata(opt_file, [](auto& meta) { meta.insert_or_assign("format", std::string("some-other-format")); });
    const std::string w = error_of(weights), i = error_of(info), o = error_of(optimizer);
    INFO(w << "\n" << i << "\n" << o);
    CHECK(contains(w, model_file.string()));
    CHECK(contains(w, "not a megabyte checkpoint"));
    CHECK(contains(w, "some-other-format"));
    CHECK(contains(i, "not a megabyte checkpoint"));
    CHECK(contains(o, opt_file.string()));
    CHECK(contains(o, "not a megabyte checkpoint"));
  }
  SUBCASE("a plain safetensors file without the format key") {
    rewrite_metadata(model_file, [](auto& meta) { meta.clear(); });
    const std::string w = error_of(weights), i = error_of(info);
    INFO(w << "\n" << i);
    CHECK(contains(w, model_file.string()));
    CHECK(contains(w, "'format'"));
    CHECK(contains(i, "'format'"));
  }
  SUBCASE("format version 2") {
    rewrite_metadata(model_file, [](auto& meta) { meta.insert_or_assign("format_version", std::string("2")); });
    rewrite_metadata(opt_file, [](auto& meta) { meta.insert_or_assign("format_version", std::string("2")); });
    const std::string w = error_of(weights), i = error_of(info), o = error_of(optimizer);
    INFO(w << "\n" << i << "\n" << o);
    CHECK(contains(w, model_file.string()));
    CHECK(contains(w, "format version 2"));
    CHECK(contains(w, "not supported"));
    CHECK(contains(i, "format version 2"));
    CHECK(contains(o, "format version 2"));
  }
  SUBCASE("a format version that is not a number") {
    rewrite_metadata(model_file, [](auto& meta) { meta.insert_or_assign("format_version", std::string("1.0")); });
    CHECK(contains(error_of(weights), "not a number"));
  }
}

// ---------------------------------------------------------------------------------------------
// evaluate_plain

namespace {

// The windows evaluation scores, built by hand: each document cut into windows of T from
// offset 0, the last one padded.
std::vector<std::vector<std::int32_t>> windows_by_hand(const std::vector<Bytes>& docs, int T) {
  std::vector<std::vector<std::int32_t>> out;
  for (const Bytes& d : docs)
    for (std::size_t at = 0; at < d.size(); at += static_cast<std::size_t>(T)) {
      std::vector<std::int32_t> w(static_cast<std::size_t>(T), mb::model::kPadId);
      for (std::size_t i = at; i < std::min(d.size(), at + static_cast<std::size_t>(T)); ++i) w[i - at] = d[i];
      out.push_back(std::move(w));
    }
  return out;
}

// The summed loss and count of `windows` [first, last), each run through the model alone.
mb::model::LossSum loss_by_hand(mb::model::Model& m, const std::vector<std::vector<std::int32_t>>& windows,
                                std::size_t first, std::size_t last) {
  mb::model::LossSum sum;
  for (std::size_t i = first; i < last; ++i) {
    const mb::model::LossSum l = m.forward(windows[i].data(), 1, false, 0);
    sum.loss += l.loss;
    sum.count += l.count;
  }
  return sum;
}

}  // namespace

TEST_CASE("evaluate_plain: every byte of every document scored once, the loss of the windows by hand") {
  const std::vector<Bytes> docs = random_documents({1, 3, 16, 17, 40}, 21);
  SmallDataset ds("tp-eval-all", {Bytes(50, 'x')}, docs);
  const auto& split = ds.split("validation");
  REQUIRE(split.documents() == 5);
  const int T = 16;
  int max_batch = 0;
  SUBCASE("one window per pass") { max_batch = 1; }
  SUBCASE("three windows per pass") { max_batch = 3; }
  SUBCASE("all windows in one pass") { max_batch = 16; }
  INFO("max_batch " << max_batch);
  auto model = tiny_model(5, max_batch);
  REQUIRE(model->config().context == T);

  std::vector<std::uint64_t> progress;
  const mb::train::EvalResult r =
      mb::train::evaluate_plain(*model, split, 0, [&](std::uint64_t b) { progress.push_back(b); });
  CHECK(r.bytes == 77);
  CHECK(r.bytes == total_bytes(docs));
  CHECK(r.documents == 5);

  const auto windows = windows_by_hand(docs, T);
  REQUIRE(windows.size() == 8);   // 1 + 1 + 1 + 2 + 3
  const mb::model::LossSum by_hand = loss_by_hand(*model, windows, 0, windows.size());
  CHECK(by_hand.count == 77);
  CHECK(r.loss > 0.0);
  CHECK(r.loss == doctest::Approx(by_hand.loss).epsilon(1e-9));
  CHECK(r.bits_per_byte() == doctest::Approx(by_hand.loss / 77.0 / std::log(2.0)).epsilon(1e-9));
  // A model at initialisation is close to uniform over 256 values: about 8 bits per byte.
  CHECK(r.bits_per_byte() == doctest::Approx(8.0).epsilon(0.05));

  // Progress after each pass, rising to the total.
  REQUIRE_FALSE(progress.empty());
  CHECK(progress.size() == (windows.size() + static_cast<std::size_t>(max_batch) - 1) / static_cast<std::size_t>(max_batch));
  CHECK(std::is_sorted(progress.begin(), progress.end()));
  CHECK(progress.back() == 77);
}

TEST_CASE("evaluate_plain: max_bytes stops after the window that reaches it") {
  // Windows, in order, with the bytes queued after each: doc 0 [1] -> 1, doc 1 [3] -> 4,
  // doc 2 [16] -> 20, doc 3 [16] -> 36, [1] -> 37, doc 4 [16] -> 53, [16] -> 69, [8] -> 77.
  // Scoring stops before the first window once `max_bytes` are queued, even inside a document.
  const std::vector<Bytes> docs = random_documents({1, 3, 16, 17, 40}, 22);
  SmallDataset ds("tp-eval-max", docs);
  const auto& split = ds.split("train");
  auto model = tiny_model(6, 3);
  const auto windows = windows_by_hand(docs, 16);

  struct Case {
    std::uint64_t max_bytes, bytes, documents;
    std::size_t windows;
  };
  for (const Case c : {Case{20, 20, 3, 3},    // doc 2 ends exactly at 20: doc 3 not started
                       Case{21, 36, 4, 4},    // doc 3 crosses 21 in its first window: scored in part
                       Case{4, 4, 2, 2},      // reached at the end of doc 1
                       Case{5, 20, 3, 3},     // doc 2's one window crosses 5
                       Case{1, 1, 1, 1},      // the first byte is enough
                       Case{37, 37, 4, 5},    // doc 3 whole
                       Case{54, 69, 5, 7},    // doc 4 in part
                       Case{77, 77, 5, 8},    // everything, exactly
                       Case{1000, 77, 5, 8}}) {  // more than there is
    INFO("max_bytes " << c.max_bytes);
    const mb::train::EvalResult r = mb::train::evaluate_plain(*model, split, c.max_bytes);
    CHECK(r.bytes == c.bytes);
    CHECK(r.documents == c.documents);
    CHECK(r.bytes >= std::min<std::uint64_t>(c.max_bytes, 77));   // at least max_bytes, where there are
    const mb::model::LossSum by_hand = loss_by_hand(*model, windows, 0, c.windows);
    CHECK(static_cast<std::uint64_t>(by_hand.count) == c.bytes);
    CHECK(r.loss == doctest::Approx(by_hand.loss).epsilon(1e-9));
  }
}

TEST_CASE("evaluate_plain: empty documents are skipped, an empty split scores nothing") {
  auto model = tiny_model(7, 2);
  SUBCASE("empty documents among others") {
    const std::vector<Bytes> docs = random_documents({0, 5, 0, 0, 20, 0}, 23);
    SmallDataset ds("tp-eval-empty-docs", docs);
    const mb::train::EvalResult r = mb::train::evaluate_plain(*model, ds.split("train"), 0);
    CHECK(r.bytes == 25);
    CHECK(r.documents == 2);
    CHECK(r.loss == doctest::Approx(loss_by_hand(*model, windows_by_hand(docs, 16), 0, 3).loss).epsilon(1e-9));
  }
  SUBCASE("a split without documents") {
    SmallDataset ds("tp-eval-empty-split", random_documents({30}, 24));
    const auto& split = ds.split("validation");
    REQUIRE(split.documents() == 0);
    int calls = 0;
    const mb::train::EvalResult r = mb::train::evaluate_plain(*model, split, 0, [&](std::uint64_t) { ++calls; });
    CHECK(r.bytes == 0);
    CHECK(r.documents == 0);
    CHECK(r.loss == 0.0);
    CHECK(r.bits_per_byte() == 0.0);
    CHECK(calls == 0);
    const mb::train::EvalResult limited = mb::train::evaluate_plain(*model, split, 100);
    CHECK(limited.bytes == 0);
    CHECK(limited.bits_per_byte() == 0.0);
  }
  SUBCASE("a split of empty documents only") {
    SmallDataset ds("tp-eval-only-empty", random_documents({0, 0}, 25));
    const mb::train::EvalResult r = mb::train::evaluate_plain(*model, ds.split("train"), 0);
    CHECK(r.bytes == 0);
    CHECK(r.documents == 0);
    CHECK(r.bits_per_byte() == 0.0);
  }
}

// ---- evaluate(): sliding windows and the paper's strided inference -------------------------

namespace {

// Per-position losses of one window read from `doc` at `start` (padded to T), by one forward.
std::vector<float> window_losses(mb::model::Model& m, const Bytes& doc, std::size_t start) {
  const int T = m.config().context;
  std::vector<std::int32_t> w(static_cast<std::size_t>(T), mb::model::kPadId);
  for (std::size_t i = start; i < std::min(doc.size(), start + static_cast<std::size_t>(T)); ++i)
    w[i - start] = doc[i];
  m.forward(w.data(), 1, false, 0);
  return std::vector<float>(m.position_losses(), m.position_losses() + T);
}

}  // namespace

TEST_CASE("evaluate: stride T is plain; every stride scores every byte exactly once") {
  const std::vector<Bytes> docs = random_documents({1, 3, 16, 17, 40}, 31);
  SmallDataset ds("tp-eval-stride", {Bytes(50, 'x')}, docs);
  const auto& split = ds.split("validation");
  auto model = tiny_model(6, 3);
  const mb::train::EvalResult plain = mb::train::evaluate_plain(*model, split, 0);
  mb::train::EvalOptions opt;
  opt.per_document = true;
  opt.per_position = true;
  for (std::uint64_t stride : {0u, 16u, 1u, 5u, 8u, 15u}) {
    INFO("stride " << stride);
    opt.stride = stride;
    const mb::train::EvalReport r = mb::train::evaluate(*model, split, opt);
    CHECK(r.total.bytes == 77);
    CHECK(r.total.documents == 5);
    REQUIRE(r.documents.size() == 5);
    double sum = 0.0;
    for (std::size_t d = 0; d < 5; ++d) {
      CHECK(r.documents[d].document == d);
      CHECK(r.documents[d].bytes == docs[d].size());
      sum += r.documents[d].loss;
    }
    CHECK(sum == doctest::Approx(r.total.loss).epsilon(1e-12));
    // By position within the patch (P = 4): the parts add up to the whole.
    REQUIRE(r.positions.size() == 4);
    double by_position = 0.0;
    std::uint64_t position_bytes = 0;
    for (const auto& p : r.positions) {
      by_position += p.loss;
      position_bytes += p.bytes;
    }
    CHECK(position_bytes == 77);
    CHECK(by_position == doctest::Approx(r.total.loss).epsilon(1e-12));
    if (stride == 0 || stride == 16) {
      CHECK(r.total.loss == plain.loss);   // the same windows
      // Plain windows: a window's position i is in patch position i mod 4; the documents of
      // 1, 3, 16, 17 (16 + 1) and 40 (16 + 16 + 8) bytes put 1+1+4+5+10 = 21 bytes at position
      // 0, 0+1+4+4+10 = 19 at 1, 19 at 2 and 0+0+4+4+10 = 18 at 3.
      CHECK(r.positions[0].bytes == 21);
      CHECK(r.positions[1].bytes == 19);
      CHECK(r.positions[2].bytes == 19);
      CHECK(r.positions[3].bytes == 18);
    }
  }
  opt.stride = 17;
  CHECK(contains(error_of([&] { mb::train::evaluate(*model, split, opt); }), "longer than the model's context"));
}

TEST_CASE("evaluate: a sliding window scores each byte once, with the window that gives it most context") {
  const std::vector<Bytes> docs = random_documents({40}, 32);
  SmallDataset ds("tp-eval-slide", {Bytes(50, 'x')}, docs);
  auto model = tiny_model(7, 2);
  mb::train::EvalOptions opt;
  opt.stride = 5;
  const mb::train::EvalReport r = mb::train::evaluate(*model, ds.split("validation"), opt);
  // T = 16, S = 5: windows at 0, 5, 10, 15, 20, 25 (the last reaches the end, 40). The first
  // scores bytes 0..15, each later one the bytes past the previous window's end.
  double by_hand = 0.0;
  std::size_t scored_to = 0, count = 0;
  for (std::size_t s = 0; scored_to < 40; s += 5) {
    const auto l = window_losses(*model, docs[0], s);
    const std::size_t e = std::min<std::size_t>(s + 16, 40);
    for (std::size_t t = scored_to; t < e; ++t, ++count) by_hand += l[t - s];
    scored_to = e;
  }
  CHECK(count == 40);
  CHECK(r.total.bytes == 40);
  CHECK(r.total.loss == doctest::Approx(by_hand).epsilon(1e-6));
  // A different stride is a different set of contexts, hence another loss.
  opt.stride = 16;
  CHECK(mb::train::evaluate(*model, ds.split("validation"), opt).total.loss != doctest::Approx(by_hand).epsilon(1e-6));
}

TEST_CASE("evaluate: strided inference keeps the first half of every patch from each of two passes") {
  const std::vector<Bytes> docs = random_documents({40, 3}, 33);
  SmallDataset ds("tp-eval-strided", {Bytes(50, 'x')}, docs);
  auto model = tiny_model(8, 2);
  const int P = model->config().patch_size;
  REQUIRE(P == 4);
  for (std::uint64_t stride : {16u, 6u}) {
    INFO("stride " << stride);
    mb::train::EvalOptions opt;
    opt.strided = true;
    opt.stride = stride;
    const mb::train::EvalReport r = mb::train::evaluate(*model, ds.split("validation"), opt);
    // By hand: the first pass reads windows at s, the second at s + P/2. Byte t of [a, e) is
    // at position t - s of the first: it is kept there if (t - s) mod P < P/2, otherwise it
    // is at position t - s - P/2 < P/2 (mod P) of the second pass and kept there.
    double by_hand = 0.0;
    std::size_t count = 0;
    for (const Bytes& doc : docs) {
      std::size_t scored_to = 0;
      for (std::size_t s = 0; scored_to < doc.size(); s += stride) {
        const std::size_t e = std::min(s + 16, doc.size());
        const auto first = window_losses(*model, doc, s);
        const auto second = s + 2 < doc.size() ? window_losses(*model, doc, s + 2) : std::vector<float>();
        for (std::size_t t = scored_to; t < e; ++t, ++count)
          by_hand += (t - s) % 4 < 2 ? first[t - s] : second.at(t - s - 2);
        scored_to = e;
      }
    }
    CHECK(count == 43);
    CHECK(r.total.bytes == 43);
    INFO("evaluate " << r.total.loss << " by hand " << by_hand);
    CHECK(r.total.loss == doctest::Approx(by_hand).epsilon(1e-6));
  }
  // The byte transformer has no patches.
  mb::model::ModelConfig c;
  c.kind = mb::model::ModelKind::transformer;
  c.context = 16;
  c.patch_size = 1;
  c.global = {8, 1, 2};
  auto transformer = tiny_model(9, 2, c);
  mb::train::EvalOptions opt;
  opt.strided = true;
  CHECK(contains(error_of([&] { mb::train::evaluate(*transformer, ds.split("validation"), opt); }), "needs a model with patches"));
}

// ---- the metrics log ------------------------------------------------------------------------

TEST_CASE("metrics log: resuming drops the lines after the checkpoint and a torn last line") {
  TempDir tmp("tp-metrics");
  const fs::path path = tmp.path / "metrics.jsonl";
  {
    std::ofstream out(path);
    out << "{\"step\":1,\"loss\":5.0}\n{\"step\":2,\"loss\":4.0}\n{\"step\":2,\"val_bpb\":6.1}\n"
        << "{\"step\":3,\"loss\":3.5}\n{\"step\":4,\"loss\":3.0}\nnot json\n{\"step\":5,\"lo";
  }
  {
    mb::train::MetricsLog log(path, 2);   // resumed from the checkpoint of step 2
    log.write("{\"step\":3,\"loss\":3.4}");
  }
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  REQUIRE(lines.size() == 4);
  CHECK(lines[0] == "{\"step\":1,\"loss\":5.0}");
  CHECK(lines[2] == "{\"step\":2,\"val_bpb\":6.1}");
  CHECK(lines[3] == "{\"step\":3,\"loss\":3.4}");

  // A fresh log (no file yet) starts empty; an unwritable place is an error naming it.
  const fs::path fresh = tmp.path / "fresh.jsonl";
  { mb::train::MetricsLog log(fresh, 0); log.write("{\"step\":1}"); }
  CHECK(fs::file_size(fresh) == std::string("{\"step\":1}\n").size());
  CHECK(contains(error_of([&] { mb::train::MetricsLog log(tmp.path / "no" / "such" / "m.jsonl", 0); }),
                 "cannot open the metrics log"));
}

TEST_CASE("checkpoint: verify_checkpoint checks both files against the model's tensors") {
  SavedRun r("tp-ckpt-verify");
  CHECK_NOTHROW(mb::model::verify_checkpoint(r.checkpoint, r.model->parameters()));
  mb::model::ModelConfig other = tiny_model_config();
  other.local.dim = 12;
  auto wrong = mb::model::make_model(other, 0);
  CHECK(contains(error_of([&] { mb::model::verify_checkpoint(r.checkpoint, wrong->parameters()); }),
                 "is not an F32 tensor of the model's shape"));
  other = tiny_model_config();
  other.global.layers = 2;
  auto deeper = mb::model::make_model(other, 0);
  CHECK(contains(error_of([&] { mb::model::verify_checkpoint(r.checkpoint, deeper->parameters()); }),
                 "is missing"));
}
