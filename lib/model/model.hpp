// A byte model: MEGABYTE (megabyte.cpp) or the byte-level transformer baseline
// (byte_transformer.cpp), behind one interface that training, evaluation and the tests use.
//
// A batch is B windows of T byte ids each ([B, T] int32): ids 0..255 are bytes (0 is an ordinary
// byte) and kPadId marks positions past the end of a short document. The model predicts every
// byte from the bytes before it in its window; padded positions carry no loss.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model/config.hpp"
#include "model/parameters.hpp"

namespace mb::model {

inline constexpr int kByteValues = 256;  // output classes
inline constexpr int kPadId = 256;       // the one pad id; embedding tables have 257 rows
inline constexpr int kEmbeddingRows = 257;

struct LossSum {
  double loss = 0.0;       // sum over the scored bytes of -ln p(byte)
  std::int64_t count = 0;  // scored bytes
};

class Model {
 public:
  virtual ~Model() = default;

  const ModelConfig& config() const { return config_; }
  ParameterSet& parameters() { return params_; }
  const ParameterSet& parameters() const { return params_; }
  int max_batch() const { return max_batch_; }

  // Runs a batch of `batch` <= max_batch() windows (copied: `ids` need not outlive the call),
  // keeping what backward() needs. Returns the summed loss, except when `training`: then only
  // the count is filled in, since backward() computes the loss anyway (the tied output head is
  // recomputed there chunk by chunk) and returns it. Dropout is applied when `training`, its
  // masks a function of `dropout_seed`.
  virtual LossSum forward(const std::int32_t* ids, int batch, bool training,
                          std::uint64_t dropout_seed) = 0;

  // Accumulates into parameters().grads() the gradient of dloss · (the summed loss of the
  // last forward()), and returns that forward's summed loss. For the mean loss of a step,
  // dloss = 1 / (bytes scored in the step).
  virtual LossSum backward(float dloss) = 0;

  // logits[batch, T, 256] of every position (no dropout); for evaluation and tests.
  virtual void logits(float* out, const std::int32_t* ids, int batch) = 0;

  // The loss of every position of the last forward() that was not `training`: [batch, T]
  // values of -ln p(byte), 0 at pads. Evaluation scores chosen positions with it.
  const float* position_losses() const { return losses_.data(); }

  // Floats of activation memory the model holds (for `megabyte bench`).
  virtual std::size_t activation_floats() const = 0;

 protected:
  Model(const ModelConfig& config, int max_batch) : config_(config), max_batch_(max_batch) {}
  ModelConfig config_;
  ParameterSet params_;
  int max_batch_;
  std::vector<float> losses_;   // [max_batch, T], written by forward() when not training
};

// A model of config.kind with its parameters allocated (zero) and buffers for up to
// `max_batch` windows. Call parameters().initialize() for a fresh model. With max_batch = 0
// nothing is allocated: the model only describes its parameters (names, shapes, counts), as
// `megabyte info` needs for a checkpoint of any size; it must not be run.
std::unique_ptr<Model> make_model(const ModelConfig& config, int max_batch);

std::unique_ptr<Model> make_megabyte_model(const ModelConfig& config, int max_batch);
std::unique_ptr<Model> make_byte_transformer_model(const ModelConfig& config, int max_batch);

// The targets of a batch: the ids, with every pad replaced by -1 (no loss).
void targets_from_ids(std::int32_t* targets, const std::int32_t* ids, std::size_t n);

}  // namespace mb::model
