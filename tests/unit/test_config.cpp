// Run configs: defaults, the exact round trip through config_to_yaml, every `--set` path, one
// bad input of each kind (each error must name the file and line, or the --set, and the key),
// and the shipped files in configs/.
#include <doctest/doctest.h>

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "error_of.hpp"
#include "core/error.hpp"
#include "model/config.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace mb::model;

namespace {

using mb::test::contains;
using mb::test::error_of;

std::string parse_error(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  return error_of([&] { parse_config(yaml, "run.yaml", overrides); });
}

// Checks that every part appears in the message, naming the missing one.
void check_message(const std::string& message, std::initializer_list<std::string> parts) {
  for (const auto& part : parts) {
    const std::string missing = "'" + part + "' not in: " + message;
    CHECK_MESSAGE(contains(message, part), missing);
  }
}

Config megabyte_config() {
  Config c;
  c.model.context = 12288;
  c.model.patch_size = 12;
  c.model.global = {176, 24, 33};
  c.model.local = {96, 3, 6};
  c.model.ffn_multiplier = 3;
  c.model.activation = Activation::gelu;
  c.model.dropout = 0.123456789f;  // not exact in binary: must still come back equal
  c.model.init_std = std::nextafter(0.006f, 1.0f);
  c.model.layernorm_eps = 1e-6f;
  c.data.modality = mb::data::Modality::image;
  c.train.seed = std::numeric_limits<std::uint64_t>::max();
  c.train.batch_size = 3;
  c.train.grad_accumulation = 7;
  c.train.steps = 123456789012;
  c.train.optimizer = {1.0 / 3.0, 0.0, 0.999999, 1e-300, 0.0, 0.0, 0, 0.5};
  c.train.eval_every = 0;
  c.train.eval_bytes = 0;
  c.train.checkpoint_every = 0;
  c.train.keep_checkpoints = 1;
  c.train.log_every = 1;
  c.train.recompute = Recompute::local;
  c.train.local_chunk = 5;
  return c;
}

Config transformer_config() {
  Config c;
  c.model.kind = ModelKind::transformer;
  c.model.patch_size = 1;
  c.model.context = 1024;
  c.model.global = {768, 13, 12};
  c.data.modality = mb::data::Modality::audio;
  c.train.optimizer.lr = 2e-4;
  c.train.optimizer.warmup_steps = c.train.steps;  // the largest warm-up allowed
  c.train.recompute = Recompute::all;
  return c;
}

}  // namespace

TEST_CASE("config: defaults are the header's defaults, from an empty file or empty sections") {
  const Config defaults;
  CHECK(parse_config("", "empty.yaml") == defaults);
  CHECK(parse_config("# nothing but a comment\n", "empty.yaml") == defaults);
  CHECK(parse_config("model:\ndata:\ntrain:\n  optimizer:\n", "empty.yaml") == defaults);
  CHECK(defaults.model.patches() == 256);
  CHECK(defaults.model.global_width() == 512);
  CHECK_NOTHROW(validate_config(defaults, "defaults"));
  CHECK(model_kind_name(ModelKind::megabyte) == "megabyte");
  CHECK(model_kind_name(ModelKind::transformer) == "transformer");
  CHECK(activation_name(Activation::relu) == "relu");
  CHECK(activation_name(Activation::gelu) == "gelu");
}

TEST_CASE("config: a file sets every key") {
  const Config c = parse_config(R"(
model:
  kind: megabyte
  context: 4096
  patch_size: 16
  global: {dim: 32, layers: 6, heads: 4}
  local:
    dim: 64
    layers: 3
    heads: 2
  ffn_multiplier: 2
  activation: gelu
  dropout: 0
  init_std: 0.02
  layernorm_eps: 1.0e-6
data:
  modality: audio
train:
  seed: 7
  batch_size: 2
  grad_accumulation: 8
  steps: 5000
  optimizer: {lr: 3e-4, beta1: 0.8, beta2: 0.95, eps: 1e-6, weight_decay: 0.01, grad_clip: 0.5,
              warmup_steps: 200, decay_power: 2}
  eval_every: 250
  eval_bytes: 65536
  checkpoint_every: 1000
  keep_checkpoints: 5
  log_every: 20
  recompute: global
  local_chunk: 64
)",
                                "full.yaml");
  CHECK(c.train.recompute == Recompute::global);
  CHECK(c.train.local_chunk == 64);
  CHECK(c.model.context == 4096);
  CHECK(c.model.patch_size == 16);
  CHECK(c.model.global == StackConfig{32, 6, 4});
  CHECK(c.model.local == StackConfig{64, 3, 2});
  CHECK(c.model.global_width() == 512);
  CHECK(c.model.ffn_multiplier == 2);
  CHECK(c.model.activation == Activation::gelu);
  CHECK(c.model.dropout == 0.0f);
  CHECK(c.model.init_std == 0.02f);
  CHECK(c.model.layernorm_eps == 1e-6f);
  CHECK(c.data.modality == mb::data::Modality::audio);
  CHECK(c.train.seed == 7);
  CHECK(c.train.batch_size == 2);
  CHECK(c.train.grad_accumulation == 8);
  CHECK(c.train.steps == 5000);
  CHECK(c.train.optimizer.lr == 3e-4);
  CHECK(c.train.optimizer.beta1 == 0.8);
  CHECK(c.train.optimizer.beta2 == 0.95);
  CHECK(c.train.optimizer.eps == 1e-6);
  CHECK(c.train.optimizer.weight_decay == 0.01);
  CHECK(c.train.optimizer.grad_clip == 0.5);
  CHECK(c.train.optimizer.warmup_steps == 200);
  CHECK(c.train.optimizer.decay_power == 2.0);
  CHECK(c.train.eval_every == 250);
  CHECK(c.train.eval_bytes == 65536);
  CHECK(c.train.checkpoint_every == 1000);
  CHECK(c.train.keep_checkpoints == 5);
  CHECK(c.train.log_every == 20);
}

TEST_CASE("config: config_to_yaml round-trips exactly") {
  for (const Config& c : {Config{}, megabyte_config(), transformer_config()}) {
    CAPTURE(config_to_yaml(c));
    REQUIRE_NOTHROW(validate_config(c, "in code"));
    const std::string yaml = config_to_yaml(c);
    CHECK(parse_config(yaml, "written.yaml") == c);
    // Writing again gives the same text: nothing drifts over repeated saves.
    CHECK(config_to_yaml(parse_config(yaml, "written.yaml")) == yaml);
  }
  SUBCASE("a transformer's file has no megabyte-only keys") {
    const std::string yaml = config_to_yaml(transformer_config());
    CHECK(contains(yaml, "kind: transformer"));
    CHECK_FALSE(contains(yaml, "patch_size"));
    CHECK_FALSE(contains(yaml, "local"));
    CHECK(parse_config(yaml, "t.yaml").model.patch_size == 1);
  }
  SUBCASE("every key is written, each number as a number to any YAML reader") {
    const std::string yaml = config_to_yaml(Config{});
    for (const char* key : {"kind:",
                            "context:",
                            "patch_size:",
                            "global: {dim: 64, layers: 4, heads: 8}",
                            "local: {dim: 128, layers: 2, heads: 4}",
                            "ffn_multiplier:",
                            "activation: relu",
                            "dropout: 0.1",
                            "init_std: 0.006",
                            "layernorm_eps: 1.0e-05",
                            "modality: text",
                            "seed:",
                            "batch_size:",
                            "grad_accumulation:",
                            "steps:",
                            "lr: 2.0e-04",
                            "beta1:",
                            "beta2:",
                            "eps: 1.0e-08",
                            "weight_decay:",
                            "grad_clip: 1.0",
                            "warmup_steps:",
                            "decay_power: 1.0",
                            "eval_every:",
                            "eval_bytes: 1048576",
                            "checkpoint_every:",
                            "keep_checkpoints:",
                            "log_every:"})
      CHECK_MESSAGE(contains(yaml, key), std::string(key));
    CHECK(contains(yaml, "# "));  // commented
    const YAML::Node doc = YAML::Load(yaml);
    CHECK(doc["model"]["layernorm_eps"].as<double>() == doctest::Approx(1e-5));
  }
}

TEST_CASE("config: every key can be set with --set") {
  struct Case {
    const char* set;
    std::function<bool(const Config&)> took;
  };
  const std::vector<Case> cases = {
      {"model.context=4096", [](const Config& c) { return c.model.context == 4096; }},
      {"train.recompute=all", [](const Config& c) { return c.train.recompute == Recompute::all; }},
      {"train.local_chunk=16", [](const Config& c) { return c.train.local_chunk == 16; }},
      {"model.patch_size=16", [](const Config& c) { return c.model.patch_size == 16; }},
      {"model.global.dim=32", [](const Config& c) { return c.model.global.dim == 32; }},
      {"model.global.layers=6", [](const Config& c) { return c.model.global.layers == 6; }},
      {"model.global.heads=16", [](const Config& c) { return c.model.global.heads == 16; }},
      {"model.local.dim=64", [](const Config& c) { return c.model.local.dim == 64; }},
      {"model.local.layers=3", [](const Config& c) { return c.model.local.layers == 3; }},
      {"model.local.heads=8", [](const Config& c) { return c.model.local.heads == 8; }},
      {"model.ffn_multiplier=2", [](const Config& c) { return c.model.ffn_multiplier == 2; }},
      {"model.activation=gelu",
       [](const Config& c) { return c.model.activation == Activation::gelu; }},
      {"model.dropout=0", [](const Config& c) { return c.model.dropout == 0.0f; }},
      {"model.init_std=0.02", [](const Config& c) { return c.model.init_std == 0.02f; }},
      {"model.layernorm_eps=1e-6", [](const Config& c) { return c.model.layernorm_eps == 1e-6f; }},
      {"data.modality=image",
       [](const Config& c) { return c.data.modality == mb::data::Modality::image; }},
      {"train.seed=42", [](const Config& c) { return c.train.seed == 42; }},
      {"train.batch_size=16", [](const Config& c) { return c.train.batch_size == 16; }},
      {"train.grad_accumulation=4", [](const Config& c) { return c.train.grad_accumulation == 4; }},
      {"train.steps=20000", [](const Config& c) { return c.train.steps == 20000; }},
      {"train.optimizer.lr=3e-4", [](const Config& c) { return c.train.optimizer.lr == 3e-4; }},
      {"train.optimizer.beta1=0.85",
       [](const Config& c) { return c.train.optimizer.beta1 == 0.85; }},
      {"train.optimizer.beta2=0.95",
       [](const Config& c) { return c.train.optimizer.beta2 == 0.95; }},
      {"train.optimizer.eps=1e-6", [](const Config& c) { return c.train.optimizer.eps == 1e-6; }},
      {"train.optimizer.weight_decay=0",
       [](const Config& c) { return c.train.optimizer.weight_decay == 0.0; }},
      {"train.optimizer.grad_clip=0",
       [](const Config& c) { return c.train.optimizer.grad_clip == 0.0; }},
      {"train.optimizer.warmup_steps=500",
       [](const Config& c) { return c.train.optimizer.warmup_steps == 500; }},
      {"train.optimizer.decay_power=0.5",
       [](const Config& c) { return c.train.optimizer.decay_power == 0.5; }},
      {"train.eval_every=0", [](const Config& c) { return c.train.eval_every == 0; }},
      {"train.eval_bytes=1024", [](const Config& c) { return c.train.eval_bytes == 1024; }},
      {"train.checkpoint_every=50", [](const Config& c) { return c.train.checkpoint_every == 50; }},
      {"train.keep_checkpoints=9", [](const Config& c) { return c.train.keep_checkpoints == 9; }},
      {"train.log_every=1", [](const Config& c) { return c.train.log_every == 1; }},
  };
  // The same override onto a file without the key (its sections created on the way), onto a
  // file that sets it (flow and block style), and onto a file that sets the key's section empty.
  const std::string files[] = {
      "",
      config_to_yaml(Config{}),
      "model:\n  global:\ntrain:\n  optimizer:\n",
  };
  for (const auto& file : files)
    for (const auto& c : cases) {
      CAPTURE(c.set);
      CAPTURE(file);
      const Config got = parse_config(file, "base.yaml", {c.set});
      CHECK(c.took(got));
      CHECK_FALSE(c.took(Config{}));  // the case really changes something
    }

  SUBCASE("model.kind onto a file without megabyte-only keys") {
    const Config t = parse_config("model:\n  global: {dim: 32, layers: 2, heads: 4}\n", "t.yaml",
                                  {"model.kind=transformer"});
    CHECK(t.model.kind == ModelKind::transformer);
    CHECK(t.model.patch_size == 1);
    CHECK(t.model.global_width() == 32);
  }
  SUBCASE("later overrides win, and values are YAML scalars") {
    const Config c =
        parse_config("model:\n  context: 1024\n", "base.yaml",
                     {"model.context=512", " model.context = '4096' ", "train.seed=3 # comment"});
    CHECK(c.model.context == 4096);
    CHECK(c.train.seed == 3);
  }
  SUBCASE("an override is checked like the file: a bad value names the --set") {
    check_message(parse_error("model:\n  context: 1024\n", {"model.context=1001"}),
                  {"--set model.context", "does not divide"});
    check_message(parse_error("", {"model.dropout=1"}),
                  {"--set model.dropout", "out of range", "hint:"});
    check_message(parse_error("", {"train.steps=ten"}),
                  {"--set train.steps", "expected a whole number", "'ten'"});
  }
}

TEST_CASE("config: broken YAML names the file and the line") {
  check_message(parse_error("model:\n  context: 1024\n  global: {dim: 8\ntrain:\n"),
                {"run.yaml: line ", "invalid YAML", "hint:"});
  check_message(parse_error("model:\n  context: 1024\n  - item\n"),
                {"run.yaml: line 3", "invalid YAML"});
  check_message(parse_error("model:\n  context: 1024\n\tglobal: {}\n"),
                {"run.yaml: line 3", "invalid YAML"});
  check_message(parse_error("- a list\n- not sections\n"),
                {"run.yaml: line 1", "top level", "hint:"});
  check_message(parse_error("model: 5\n"),
                {"run.yaml: line 1: key 'model'", "must be a section", "hint:"});
  check_message(parse_error("model:\n  global: 64\n"),
                {"run.yaml: line 2: key 'model.global'", "must be a section"});
}

TEST_CASE("config: an unknown key is named with its line and the nearest known key") {
  check_message(
      parse_error("model:\n  context: 1024\n  patch_sise: 8\n"),
      {"run.yaml: line 3", "unknown key 'model.patch_sise'", "did you mean 'model.patch_size'?"});
  check_message(parse_error("modle:\n  context: 1024\n"),
                {"run.yaml: line 1", "unknown key 'modle'", "did you mean 'model'?"});
  check_message(parse_error("model:\n  global: {dim: 8, layer: 2}\n"),
                {"run.yaml: line 2", "unknown key 'model.global.layer'",
                 "did you mean 'model.global.layers'?"});
  check_message(parse_error("train:\n  optimizer:\n    warmup_step: 10\n"),
                {"run.yaml: line 3", "'train.optimizer.warmup_step'",
                 "did you mean 'train.optimizer.warmup_steps'?"});
  // An optimiser key one level too high is pointed at its section.
  check_message(parse_error("train:\n  steps: 10\n  lr: 3e-4\n"),
                {"run.yaml: line 3", "unknown key 'train.lr'", "'train.optimizer.lr'"});
  // Nothing near: the hint lists the section's keys.
  check_message(parse_error("data:\n  colour: blue\n"), {"unknown key 'data.colour'", "modality"});
  check_message(parse_error("model:\n  context: 1024\n  context: 2048\n"),
                {"run.yaml: line 3", "'model.context' is given twice"});
}

TEST_CASE("config: a value of the wrong type names the key and its line") {
  check_message(
      parse_error("model:\n  context: lots\n"),
      {"run.yaml: line 2: key 'model.context'", "expected a whole number", "'lots'", "hint:"});
  // Integers in scientific or decimal notation are refused, not truncated.
  check_message(parse_error("train:\n  eval_bytes: 1e9\n"),
                {"run.yaml: line 2: key 'train.eval_bytes'", "expected a whole number", "'1e9'",
                 "plain digits"});
  check_message(parse_error("model:\n  context: 2048.0\n"),
                {"line 2", "expected a whole number", "'2048.0'"});
  // Out of the field's range, including beyond 64 bits.
  check_message(parse_error("model:\n  context: 1000000000\n"),
                {"line 2: key 'model.context'", "1000000000, out of range", "16777216"});
  check_message(parse_error("train:\n  steps: 99999999999999999999\n"),
                {"line 2: key 'train.steps'", "out of range"});
  check_message(parse_error("train:\n  batch_size: 3000000000\n"),
                {"line 2: key 'train.batch_size'", "out of range"});
  check_message(parse_error("train:\n  seed: -1\n"),
                {"line 2: key 'train.seed'", "expected a whole number"});
  check_message(parse_error("train:\n  optimizer:\n    lr: fast\n"),
                {"run.yaml: line 3: key 'train.optimizer.lr'", "expected a number", "'fast'"});
  check_message(parse_error("train:\n  optimizer:\n    lr: .inf\n"),
                {"line 3", "expected a number"});
  check_message(parse_error("model:\n  init_std: 1e-60\n"),
                {"line 2: key 'model.init_std'", "32-bit float"});
  check_message(parse_error("model:\n  context: [1024]\n"),
                {"line 2: key 'model.context'", "single value"});
  check_message(parse_error("model:\n  context:\n"),
                {"line 2: key 'model.context'", "has no value", "hint:"});
}

TEST_CASE("config: sizes must be positive and values in range") {
  for (const char* yaml : {"model:\n  context: 0\n", "model:\n  context: -8\n",
                           "model:\n  patch_size: 0\n", "model:\n  global: {dim: 0}\n",
                           "model:\n  global: {layers: 0}\n", "model:\n  local: {heads: 0}\n",
                           "model:\n  local: {dim: -1}\n", "model:\n  ffn_multiplier: 0\n",
                           "train:\n  batch_size: 0\n", "train:\n  grad_accumulation: 0\n",
                           "train:\n  steps: 0\n", "train:\n  keep_checkpoints: 0\n",
                           "train:\n  log_every: 0\n", "train:\n  eval_every: -1\n"}) {
    CAPTURE(yaml);
    check_message(parse_error(yaml),
                  {"run.yaml: line 2: key '", "out of range", "hint: use a whole number"});
  }
  for (const char* yaml :
       {"model:\n  dropout: 1\n", "model:\n  dropout: -0.1\n", "model:\n  init_std: 0\n",
        "model:\n  layernorm_eps: -1e-5\n", "train:\n  optimizer: {lr: 0}\n",
        "train:\n  optimizer: {beta1: 1}\n", "train:\n  optimizer: {beta2: 1.5}\n",
        "train:\n  optimizer: {eps: 0}\n", "train:\n  optimizer: {weight_decay: -0.1}\n",
        "train:\n  optimizer: {grad_clip: -1}\n", "train:\n  optimizer: {decay_power: -1}\n",
        "train:\n  optimizer: {warmup_steps: -1}\n"}) {
    CAPTURE(yaml);
    check_message(parse_error(yaml), {"run.yaml: line 2: key '", "out of range", "hint: use "});
  }
  check_message(parse_error("train:\n  steps: 100\n  optimizer: {warmup_steps: 101}\n"),
                {"run.yaml: line 3: key 'train.optimizer.warmup_steps'",
                 "more than train.steps 100", "hint:"});
  // The global stack's width P*D_G has a bound of its own.
  check_message(parse_error("model:\n  context: 65536\n  patch_size: 64\n  global: {dim: 2048}\n"),
                {"line 4: key 'model.global.dim'", "131072", "hint:"});
}

TEST_CASE("config: the patch size must divide the context") {
  check_message(parse_error("model:\n  context: 1000\n  patch_size: 12\n"),
                {"run.yaml: line 3: key 'model.patch_size'",
                 "P = 12 does not divide context T = 1000", "hint:", "e.g. 10"});
  check_message(parse_error("model:\n  context: 2048\n  patch_size: 7\n"),
                {"line 3", "does not divide", "e.g. 8"});
  // Patch longer than the context.
  check_message(parse_error("model:\n  context: 8\n  patch_size: 16\n"),
                {"line 3", "does not divide", "e.g. 8"});
  // The key named is the one the user gave: here the context, P being the default 8.
  check_message(parse_error("model:\n  context: 1001\n"),
                {"run.yaml: line 2: key 'model.context'", "does not divide"});
  // And the one set with --set over the one in the file.
  check_message(parse_error("model:\n  context: 1024\n  patch_size: 8\n", {"model.patch_size=24"}),
                {"--set model.patch_size", "does not divide"});
}

TEST_CASE("config: heads must divide each stack's width") {
  // Global: the width is P*D_G = 8*6 = 48, which 5 heads do not divide.
  check_message(parse_error("model:\n  patch_size: 8\n  global: {dim: 6, heads: 5}\n"),
                {"run.yaml: line 3: key 'model.global.heads'", "5 heads do not divide",
                 "P*D_G = 8*6 = 48", "hint: choose a number of heads that divides 48"});
  // 16 heads divide P*D_G = 48 although not D_G = 6: allowed.
  CHECK(parse_config("model:\n  patch_size: 8\n  global: {dim: 6, heads: 16}\n", "ok.yaml")
            .model.global.heads == 16);
  check_message(
      parse_error("model:\n  local:\n    dim: 100\n    heads: 3\n"),
      {"run.yaml: line 4: key 'model.local.heads'", "3 heads do not divide", "D_L = 100"});
  check_message(parse_error("model:\n  kind: transformer\n  global: {dim: 100, heads: 8}\n"),
                {"line 3: key 'model.global.heads'", "D = 100"});
}

TEST_CASE("config: megabyte-only keys are refused with kind transformer") {
  check_message(
      parse_error("model:\n  kind: transformer\n  patch_size: 8\n"),
      {"run.yaml: line 3: key 'model.patch_size'", "kind megabyte only", "hint: delete it"});
  check_message(parse_error("model:\n  kind: transformer\n  local: {dim: 64}\n"),
                {"run.yaml: line 3: key 'model.local'", "kind megabyte only"});
  check_message(parse_error("model:\n  patch_size: 8\n", {"model.kind=transformer"}),
                {"run.yaml: line 2: key 'model.patch_size'", "kind megabyte only"});
  check_message(parse_error("model:\n  kind: transformer\n", {"model.local.dim=32"}),
                {"--set model.local.dim", "kind megabyte only"});
}

TEST_CASE("config: an unknown enum value is named with its choices") {
  check_message(parse_error("model:\n  kind: megabite\n"),
                {"run.yaml: line 2: key 'model.kind'", "unknown model kind 'megabite'",
                 "did you mean 'megabyte'?", "megabyte or transformer"});
  check_message(
      parse_error("model:\n  activation: swish\n"),
      {"run.yaml: line 2: key 'model.activation'", "unknown activation 'swish'", "relu or gelu"});
  check_message(parse_error("train:\n  recompute: globl\n"),
                {"run.yaml: line 2: key 'train.recompute'", "unknown recompute setting 'globl'",
                 "did you mean 'global'?", "none, global, local (megabyte only) or all"});
  check_message(parse_error("data:\n  modality: video\n"),
                {"run.yaml: line 2: key 'data.modality'", "unknown modality 'video'",
                 "text, image or audio"});
}

TEST_CASE("config: recomputing the local model of a transformer is refused") {
  check_message(parse_error("model:\n  kind: transformer\ntrain:\n  recompute: local\n"),
                {"run.yaml: line 4: key 'train.recompute'", "a transformer has no local model",
                 "use global (or all)"});
  check_message(parse_error("model:\n  kind: transformer\n", {"train.recompute=local"}),
                {"--set train.recompute", "no local model"});
  CHECK(parse_config("model:\n  kind: transformer\ntrain:\n  recompute: all\n", "t.yaml")
            .train.recompute == Recompute::all);
}

TEST_CASE("config: train.local_chunk is a count of patches, megabyte only") {
  check_message(parse_error("train:\n  local_chunk: -1\n"),
                {"run.yaml: line 2: key 'train.local_chunk'", "train.local_chunk"});
  check_message(parse_error("train:\n  local_chunk: many\n"),
                {"run.yaml: line 2: key 'train.local_chunk'", "expected a whole number"});
  check_message(parse_error("model:\n  kind: transformer\ntrain:\n  local_chunk: 8\n"),
                {"run.yaml: line 4: key 'train.local_chunk'", "a transformer has no local model",
                 "leave train.local_chunk at 0"});
  CHECK(parse_config("train:\n  local_chunk: 0\n", "m.yaml").train.local_chunk == 0);
}

TEST_CASE("config: a malformed --set is named") {
  check_message(parse_error("", {"model.context"}),
                {"--set model.context", "no '='", "hint: write --set KEY=VALUE"});
  check_message(parse_error("", {"=8"}), {"--set =8", "key before '=' is empty", "hint:"});
  check_message(parse_error("", {"model..context=8"}),
                {"--set model..context=8", "empty part", "hint:"});
  check_message(parse_error("", {".context=8"}), {"empty part"});
  check_message(parse_error("", {"model.context="}), {"--set model.context", "no value", "hint:"});
  check_message(parse_error("", {"model.context=[1, 2]"}),
                {"--set model.context", "not a single value"});
  check_message(parse_error("", {"model.context=[1, 2"}),
                {"--set model.context", "not valid YAML"});
  check_message(
      parse_error("model:\n  context: 1024\n", {"model.context.x=1"}),
      {"--set model.context.x", "'model.context' is a single value", "hint: set it directly"});
  check_message(parse_error("", {"model.global=8"}), {"--set model.global", "must be a section"});
}

TEST_CASE("config: an unknown key in --set names the --set, not a line") {
  const std::string e = parse_error("model:\n  context: 1024\n", {"model.patch_sise=4"});
  check_message(e, {"--set model.patch_sise", "unknown key 'model.patch_sise'",
                    "did you mean 'model.patch_size'?"});
  CHECK_FALSE(contains(e, "line"));
  check_message(parse_error("", {"modle.context=1"}),
                {"--set modle.context", "unknown key 'modle'", "'model'"});
  // A natural guess (the design notes' own example): lr lives under train.optimizer.
  check_message(parse_error("", {"train.lr=3e-4"}), {"--set train.lr", "'train.optimizer.lr'"});
}

TEST_CASE("config: validate_config checks configs built in code") {
  Config c;
  c.model.patch_size = 7;
  check_message(error_of([&] { validate_config(c, "cfg"); }),
                {"cfg: key 'model.patch_size'", "does not divide", "hint:"});
  c = Config{};
  c.model.global.heads = 3;
  check_message(error_of([&] { validate_config(c, "cfg"); }), {"cfg: key 'model.global.heads'"});
  c = Config{};
  c.model.dropout = std::nanf("");
  check_message(error_of([&] { validate_config(c, "cfg"); }),
                {"cfg: key 'model.dropout'", "out of range"});
  c = Config{};
  c.train.optimizer.lr = std::numeric_limits<double>::infinity();
  check_message(error_of([&] { validate_config(c, "cfg"); }), {"cfg: key 'train.optimizer.lr'"});
  c = Config{};
  c.model.context = 1 << 25;
  check_message(error_of([&] { validate_config(c, "cfg"); }),
                {"cfg: key 'model.context'", "16777216"});
  // A transformer has P = 1 and no local model: anything else would not round-trip.
  c = transformer_config();
  c.model.patch_size = 8;
  check_message(error_of([&] { validate_config(c, "cfg"); }), {"cfg: key 'model.patch_size'"});
  c = transformer_config();
  c.model.local.dim = 32;
  check_message(error_of([&] { validate_config(c, "cfg"); }), {"cfg: key 'model.local'"});
}

TEST_CASE("config: load_config reads a file and names it in errors") {
  mb::test::TempDir tmp("config-load");
  const fs::path good = tmp.path / "good.yaml";
  std::ofstream(good) << config_to_yaml(megabyte_config());
  CHECK(load_config(good.string()) == megabyte_config());
  CHECK(load_config(good.string(), {"train.steps=10", "train.optimizer.warmup_steps=0"})
            .train.steps == 10);
  const fs::path bad = tmp.path / "bad.yaml";
  std::ofstream(bad) << "model:\n  context: 1024\n  heads: 8\n";
  check_message(error_of([&] { load_config(bad.string()); }),
                {"bad.yaml: line 3", "unknown key 'model.heads'"});
  CHECK_FALSE(error_of([&] { load_config((tmp.path / "missing.yaml").string()); }).empty());
}

TEST_CASE("config: every file in configs/ loads and round-trips") {
  const fs::path dir = fs::path(MB_SOURCE_ROOT) / "configs";
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    CAPTURE(entry.path().string());
    names.insert(entry.path().filename().string());
    Config c;
    REQUIRE_NOTHROW(c = load_config(entry.path().string()));
    CHECK(parse_config(config_to_yaml(c), "again.yaml") == c);
  }
  for (const char* name : {"tiny-cpu.yaml", "tiny-transformer-cpu.yaml", "bench-cpu.yaml",
                           "paper-pg19.yaml", "paper-imagenet64.yaml", "paper-imagenet256.yaml",
                           "paper-imagenet640.yaml", "paper-audio.yaml"})
    CHECK_MESSAGE(names.count(name) == 1, std::string(name));

  SUBCASE("the tiny MEGABYTE and its transformer baseline differ only in the model") {
    const Config mega = load_config((dir / "tiny-cpu.yaml").string());
    const Config base = load_config((dir / "tiny-transformer-cpu.yaml").string());
    CHECK(mega.model.kind == ModelKind::megabyte);
    CHECK(base.model.kind == ModelKind::transformer);
    CHECK(mega.model.context == base.model.context);
    CHECK(mega.data == base.data);
    CHECK(mega.train == base.train);
  }
  SUBCASE("the paper's shapes") {
    const auto load = [&](const char* name) { return load_config((dir / name).string()); };
    const Config pg19 = load("paper-pg19.yaml");
    CHECK(pg19.model.context == 8192);
    CHECK(pg19.model.patch_size == 8);
    CHECK(pg19.model.global_width() == 2048);
    CHECK(pg19.data.modality == mb::data::Modality::text);
    const Config in64 = load("paper-imagenet64.yaml");
    CHECK(in64.model.context == 64 * 64 * 3);
    CHECK(in64.model.patch_size == 12);
    CHECK(in64.data.modality == mb::data::Modality::image);
    const Config in256 = load("paper-imagenet256.yaml");
    CHECK(in256.model.context == 256 * 256 * 3);
    CHECK(in256.model.patch_size == 192);
    CHECK(in256.model.global_width() == 768);
    const Config in640 = load("paper-imagenet640.yaml");
    CHECK(in640.model.context == 640 * 640 * 3);
    CHECK(in640.model.patch_size == 192);
    const Config audio = load("paper-audio.yaml");
    CHECK(audio.model.context == 524288);
    CHECK(audio.model.patch_size == 32);
    CHECK(audio.model.global_width() == 1024);
    CHECK(audio.data.modality == mb::data::Modality::audio);
    for (const Config* c : {&pg19, &in64, &in256, &in640, &audio}) {
      // Appendix A.1 of the paper, for every model.
      CHECK(c->model.activation == Activation::relu);
      CHECK(c->model.dropout == 0.1f);
      CHECK(c->model.init_std == 0.006f);
      CHECK(c->train.optimizer.beta1 == 0.9);
      CHECK(c->train.optimizer.beta2 == 0.98);
      CHECK(c->train.optimizer.weight_decay == 0.1);
      CHECK(c->train.optimizer.grad_clip == 1.0);
      CHECK(c->train.optimizer.warmup_steps == 500);
    }
  }
}

TEST_CASE("config: bench-cpu.yaml is the benchmark's exact shape") {
  const Config c = load_config((fs::path(MB_SOURCE_ROOT) / "configs" / "bench-cpu.yaml").string());
  CHECK(c.model.kind == ModelKind::megabyte);
  CHECK(c.model.context == 2048);
  CHECK(c.model.patch_size == 8);
  CHECK(c.model.global == StackConfig{64, 4, 8});
  CHECK(c.model.global_width() == 512);
  CHECK(c.model.local == StackConfig{128, 2, 4});
  CHECK(c.model.ffn_multiplier == 4);
  CHECK(c.model.dropout == 0.1f);
  CHECK(c.train.batch_size == 4);
  CHECK(c.train.grad_accumulation == 1);
  CHECK(c.train.optimizer.weight_decay > 0.0);  // AdamW: decoupled weight decay
}
