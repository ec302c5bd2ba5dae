// Checkpoint directories: exact round trip of weights, moments and state, the recorded dataset
// layout, listing, pruning, resolving, verifying, and refusing other files, models and format
// versions.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "error_of.hpp"
#include "model/checkpoint.hpp"
#include "model/config.hpp"
#include "model/model.hpp"
#include "model/safetensors.hpp"
#include "safetensors_edit.hpp"
#include "temp_dir.hpp"
#include "training_fixtures.hpp"

namespace fs = std::filesystem;
using mb::test::contains;
using mb::test::error_of;
using mb::test::TempDir;
using mb::test::tiny_model;
using mb::test::tiny_model_config;

namespace {

// The defaults with the tiny model section: a config that parse_config accepts.
mb::model::Config tiny_config() {
  mb::model::Config c;
  c.model = tiny_model_config();
  return c;
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
  const float special[] = {-0.0f, std::numeric_limits<float>::denorm_min(),
                           std::numeric_limits<float>::max(), -std::numeric_limits<float>::min(),
                           1e-30f};
  for (const auto& t : params.tensors())
    for (std::size_t i = 0; i < t.size; ++i)
      out[t.offset + i] = i < std::size(special) ? special[i] : normal(gen);
  return out;
}

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
    state.sampler_index = 0xFFFFFFFFFFFFFFF0ull;  // needs all 64 bits
    checkpoint = mb::model::save_checkpoint(run, config, model->parameters(), m, v, state);
  }
  fs::path save(std::int64_t step) {
    mb::model::TrainingState s = state;
    s.step = step;
    return mb::model::save_checkpoint(run, config, model->parameters(), m, v, s);
  }
};

}  // namespace

TEST_CASE(
    "checkpoint: save then load round-trips the weights, the moments and the state bit for bit") {
  SavedRun r("tp-ckpt-roundtrip");
  CHECK(r.checkpoint == r.run / "checkpoints" / "step-00001234");
  CHECK(fs::is_regular_file(r.checkpoint / "model.safetensors"));
  CHECK(fs::is_regular_file(r.checkpoint / "optimizer.safetensors"));

  auto loaded = mb::model::make_model(tiny_model_config(), 1);  // zero weights
  REQUIRE_FALSE(same_bits(loaded->parameters().values(), r.model->parameters().values()));
  mb::model::load_weights(r.checkpoint, loaded->parameters());
  CHECK(same_bits(loaded->parameters().values(), r.model->parameters().values()));

  std::vector<float> m{1.0f}, v;  // replaced, whatever they held
  const mb::model::TrainingState s =
      mb::model::load_optimizer_state(r.checkpoint, loaded->parameters(), m, v);
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
  CHECK(loaded->forward(ids.data(), 1, false, 0).loss ==
        r.model->forward(ids.data(), 1, false, 0).loss);
}

TEST_CASE("checkpoint: the dataset's layout is recorded for image and audio models") {
  SavedRun r("tp-ckpt-encoder");
  CHECK_FALSE(mb::model::read_checkpoint_info(r.checkpoint).has_encoder);  // none given
  mb::data::EncoderParams text;  // text has no layout to record
  CHECK_FALSE(mb::model::read_checkpoint_info(mb::model::save_checkpoint(r.run, r.config,
                                                                         r.model->parameters(), r.m,
                                                                         r.v, r.state, &text))
                  .has_encoder);

  r.config.data.modality = mb::data::Modality::image;
  mb::data::EncoderParams image;
  image.modality = mb::data::Modality::image;
  image.image.image_size = 40;
  image.image.patch_size = 48;
  r.state.step = 2;
  const auto ci = mb::model::read_checkpoint_info(mb::model::save_checkpoint(
      r.run, r.config, r.model->parameters(), r.m, r.v, r.state, &image));
  CHECK(ci.has_encoder);
  CHECK(ci.encoder.modality == mb::data::Modality::image);
  CHECK(ci.encoder.image.image_size == 40);
  CHECK(ci.encoder.image.patch_size == 48);

  r.config.data.modality = mb::data::Modality::audio;
  mb::data::EncoderParams audio;
  audio.modality = mb::data::Modality::audio;
  audio.audio.sample_rate = 22050;
  r.state.step = 3;
  const auto ca = mb::model::read_checkpoint_info(mb::model::save_checkpoint(
      r.run, r.config, r.model->parameters(), r.m, r.v, r.state, &audio));
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
  SavedRun r("tp-ckpt-list");  // step 1234
  const fs::path ckpts = r.run / "checkpoints";
  r.save(99999999);
  r.save(100000000);  // 9 digits: after 99999999 by step, before it by name
  r.save(30);
  r.save(5);
  // A staging directory (as AtomicDirectory names them, and one with a suffix), both complete.
  fs::copy(ckpts / "step-00000005", ckpts / ".step-00000200.partial-1234");
  fs::copy(ckpts / "step-00000005", ckpts / "step-00000300.partial");
  // A step directory without its optimizer state; another without its weights.
  fs::create_directories(ckpts / "step-00000400");
  fs::copy_file(ckpts / "step-00000005" / "model.safetensors",
                ckpts / "step-00000400" / "model.safetensors");
  fs::create_directories(ckpts / "step-00000500");
  fs::copy_file(ckpts / "step-00000005" / "optimizer.safetensors",
                ckpts / "step-00000500" / "optimizer.safetensors");
  // A file with a step name.
  std::ofstream(ckpts / "step-00000600") << "x";

  const std::vector<fs::path> expected = {ckpts / "step-00000005", ckpts / "step-00000030",
                                          ckpts / "step-00001234", ckpts / "step-99999999",
                                          ckpts / "step-100000000"};
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
  SavedRun r("tp-ckpt-prune");  // step 1234
  const fs::path ckpts = r.run / "checkpoints";
  for (std::int64_t s : {10, 2000, 500, 20}) r.save(s);
  fs::copy(ckpts / "step-00000010", ckpts / ".step-00000001.partial-1");  // not a checkpoint
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
  CHECK(fs::exists(ckpts / ".step-00000001.partial-1"));  // only checkpoints are pruned
  mb::model::prune_checkpoints(r.run, 1);
  CHECK(mb::model::list_checkpoints(r.run) == std::vector<fs::path>{ckpts / "step-00002000"});
  // The kept one still loads.
  auto loaded = mb::model::make_model(tiny_model_config(), 1);
  mb::model::load_weights(ckpts / "step-00002000", loaded->parameters());
  CHECK(same_bits(loaded->parameters().values(), r.model->parameters().values()));
}

TEST_CASE("checkpoint: resolve_checkpoint takes a run, a checkpoint directory or its files") {
  SavedRun r("tp-ckpt-resolve");  // step 1234
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
    fs::create_directories(run / "checkpoints" / "step-00000001");  // incomplete
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
    const std::string msg =
        error_of([&] { mb::model::load_weights(r.checkpoint, m->parameters()); });
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
    const std::string msg =
        error_of([&] { mb::model::load_weights(r.checkpoint, m->parameters()); });
    INFO(msg);
    CHECK(contains(msg, (r.checkpoint / "model.safetensors").string()));
    CHECK((contains(msg, "tensors, the model has") || contains(msg, "no tensor named")));
  }
  SUBCASE("another global.layers: more tensors than the file holds") {
    mb::model::ModelConfig other = tiny_model_config();
    other.global.layers = 2;
    auto m = mb::model::make_model(other, 1);
    const std::string msg =
        error_of([&] { mb::model::load_weights(r.checkpoint, m->parameters()); });
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
    mb::test::rewrite_safetensors_metadata(model_file, [](auto& meta) {
      meta.insert_or_assign("format", std::string("some-other-format"));
    });
    mb::test::rewrite_safetensors_metadata(opt_file, [](auto& meta) {
      meta.insert_or_assign("format", std::string("some-other-format"));
    });
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
    mb::test::rewrite_safetensors_metadata(model_file, [](auto& meta) { meta.clear(); });
    const std::string w = error_of(weights), i = error_of(info);
    INFO(w << "\n" << i);
    CHECK(contains(w, model_file.string()));
    CHECK(contains(w, "'format'"));
    CHECK(contains(i, "'format'"));
  }
  SUBCASE("format version 2") {
    mb::test::rewrite_safetensors_metadata(model_file,
                     [](auto& meta) { meta.insert_or_assign("format_version", std::string("2")); });
    mb::test::rewrite_safetensors_metadata(opt_file,
                     [](auto& meta) { meta.insert_or_assign("format_version", std::string("2")); });
    const std::string w = error_of(weights), i = error_of(info), o = error_of(optimizer);
    INFO(w << "\n" << i << "\n" << o);
    CHECK(contains(w, model_file.string()));
    CHECK(contains(w, "format version 2"));
    CHECK(contains(w, "not supported"));
    CHECK(contains(i, "format version 2"));
    CHECK(contains(o, "format version 2"));
  }
  SUBCASE("a format version that is not a number") {
    mb::test::rewrite_safetensors_metadata(model_file, [](auto& meta) {
      meta.insert_or_assign("format_version", std::string("1.0"));
    });
    CHECK(contains(error_of(weights), "not a number"));
  }
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
  CHECK(
      contains(error_of([&] { mb::model::verify_checkpoint(r.checkpoint, deeper->parameters()); }),
               "is missing"));
}
