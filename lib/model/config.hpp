// A run's configuration: the model's shape (the paper's symbols in the comments), the data it
// expects and the training settings. Read from YAML (megabyte-config(5) documents every key),
// validated on load, overridable key by key with `--set a.b=value`, and written back out in
// full (`--print-config`, RUNDIR/config.yaml, checkpoint metadata), so a saved config
// reproduces the run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/encoders/modality.hpp"

namespace mb::model {

enum class ModelKind {
  megabyte,     // the paper's multiscale model: a global model over patches, a local one inside
  transformer,  // the paper's baseline: one decoder-only transformer over the bytes
};

enum class Activation { relu, gelu };

// Which stacks recompute their activations in the backward pass instead of keeping them
// (train.recompute; ActivationPolicy in model.hpp): the same gradients in less memory.
enum class Recompute { none, global, local, all };

// One transformer stack (pre-norm decoder blocks followed by a final layer norm).
struct StackConfig {
  int dim = 64;  // megabyte global: D_G, per byte (the stack is P·D_G wide); otherwise the width
  int layers = 4;
  int heads = 8;
  bool operator==(const StackConfig&) const = default;
};

struct ModelConfig {
  ModelKind kind = ModelKind::megabyte;
  int context = 2048;            // T: bytes per window
  int patch_size = 8;            // P (megabyte only; 1 for the transformer): divides T
  StackConfig global{64, 4, 8};  // megabyte: the global model; transformer: the one stack
  StackConfig local{128, 2, 4};  // megabyte only: the local model, D_L wide
  int ffn_multiplier = 4;        // feed-forward hidden width = ffn_multiplier × stack width
  Activation activation = Activation::relu;
  float dropout = 0.1f;     // on attention and feed-forward outputs, never on embeddings
  float init_std = 0.006f;  // truncated normal, cut at ±2σ
  float layernorm_eps = 1e-5f;

  int patches() const { return context / patch_size; }  // K = T / P
  // Width of the global stack: P·D_G for megabyte, D for the transformer.
  int global_width() const {
    return kind == ModelKind::megabyte ? patch_size * global.dim : global.dim;
  }
  bool operator==(const ModelConfig&) const = default;
};

struct DataConfig {
  data::Modality modality = data::Modality::text;  // must match the dataset's
  bool operator==(const DataConfig&) const = default;
};

struct OptimizerConfig {
  double lr = 2e-4;  // peak learning rate
  double beta1 = 0.9;
  double beta2 = 0.98;
  double eps = 1e-8;
  double weight_decay = 0.1;        // decoupled (AdamW), on weight matrices and embeddings only
  double grad_clip = 1.0;           // global gradient-norm clip; 0 disables
  std::int64_t warmup_steps = 100;  // linear warm-up from 0 to lr
  double decay_power = 1.0;         // then (1 - progress)^power down to 0 at train.steps
  bool operator==(const OptimizerConfig&) const = default;
};

struct TrainConfig {
  std::uint64_t seed = 1;
  int batch_size = 4;         // windows per micro-batch
  int grad_accumulation = 1;  // micro-batches per optimiser step
  std::int64_t steps = 1000;  // optimiser steps
  OptimizerConfig optimizer;
  std::int64_t eval_every = 100;  // validation bpb every N steps (0: only at the end)
  std::int64_t eval_bytes =
      1 << 20;  // at least this many validation bytes, in whole windows (0: all)
  std::int64_t checkpoint_every = 500;    // (0: only at the end and on interrupt)
  int keep_checkpoints = 3;               // newest N kept
  std::int64_t log_every = 10;            // JSONL metrics line every N steps
  Recompute recompute = Recompute::none;  // stacks whose activations the backward pass recomputes
  int local_chunk = 0;  // megabyte: patches the local model runs at a time in training (0: all)
  int zero = 0;  // 1: each rank of a job keeps the optimizer state of its share of the parameters
  bool operator==(const TrainConfig&) const = default;
};

struct Config {
  ModelConfig model;
  DataConfig data;
  TrainConfig train;
  bool operator==(const Config&) const = default;
};

// Parse YAML text (`name` is the file name used in messages), apply the `--set` overrides
// ("a.b.c=value", value parsed as a YAML scalar) and validate. Keys missing from the text take
// the defaults above. Throws mb::Error naming file, line and key for a syntax error, an unknown
// key (with the nearest known key), a bad value or an inconsistent combination (P not dividing
// T, heads not dividing a width, a megabyte-only key on a transformer, ...); an override's
// errors name it as "--set KEY".
Config parse_config(const std::string& yaml_text, const std::string& name,
                    const std::vector<std::string>& overrides = {});
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// Every key of the config, resolved, as YAML that parse_config reads back to an equal Config.
std::string config_to_yaml(const Config& config);

// Throws mb::Error (where = `name`) for an inconsistent config; parse_config calls it.
void validate_config(const Config& config, const std::string& name);

std::string_view model_kind_name(ModelKind k);
std::string_view activation_name(Activation a);
std::string_view recompute_name(Recompute r);

}  // namespace mb::model
