// Helpers for the whole-model GPU tests (test_model.cpp, test_training.cpp): small configs of
// both model kinds, batches with a padded window, a CPU and a CUDA model with the same
// parameters, and comparisons of host buffers tensor by tensor (by name).
//
// The model code is written once against mb::backend::Backend, so these tests are about what
// the op tests cannot see: the plumbing around the ops on a device whose memory is not the
// host's (uploads and downloads of parameters, ids and losses, the arena's buffers, the
// gradient buffer being zeroed and accumulated, the optimiser's device moments), and that
// nothing in a whole forward/backward/step amplifies the ops' rounding differences.
#pragma once

#include "gpu_check.hpp"

#include "backend/backend.hpp"
#include "model/config.hpp"
#include "model/model.hpp"
#include "model/parameters.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace gm {

using mb::backend::Backend;
using mb::backend::Device;
using mb::model::Model;
using mb::model::ModelConfig;
using mb::model::ModelKind;

// Doctest suite of the whole-model tests: the sanitizer runs exclude it (meson.build), since
// its CPU references and many small launches would only be slow under compute-sanitizer and
// the kernels it launches are the ones the op tests already run there.
inline constexpr const char* kSuite = "whole-model";

inline constexpr int kContext = 64;  // T
inline constexpr int kBatch = 2;     // windows per forward (max_batch of every model here)
// Init std: larger than a real run's 0.006, so that activations, attention scores (std ~0.3)
// and gradients are well above fp32 noise and differences would show, yet small enough that
// the softmaxes stay soft and no layer norm sees a near-constant row.
inline constexpr float kInitStd = 0.05f;
inline constexpr std::uint64_t kInitSeed = 20240611;

// Both kinds: T = 64, 2 layers per stack, FFN 4×. GELU, not ReLU: a pre-activation within
// rounding of 0 would make the two backends disagree on ReLU's kink, which is a real
// difference of a whole gradient term, not a bug (tests/gpu/test_activation.cpp covers ReLU
// exactly).
// - MEGABYTE: P = 8 (K = 8 patches), D_G = 16 (global width P·D_G = 128, 4 heads of 32),
//   D_L = 32 (2 heads of 16).
// - The byte transformer: width 64 with 4 heads of 16.
inline ModelConfig config_of(ModelKind kind, float dropout) {
  ModelConfig c;
  c.kind = kind;
  c.context = kContext;
  c.ffn_multiplier = 4;
  c.activation = mb::model::Activation::gelu;
  c.dropout = dropout;
  c.init_std = kInitStd;
  if (kind == ModelKind::megabyte) {
    c.patch_size = 8;
    c.global = {16, 2, 4};
    c.local = {32, 2, 2};
  } else {
    c.patch_size = 1;
    c.global = {64, 2, 4};
  }
  return c;
}

inline std::string kind_name(ModelKind kind) {
  return std::string(mb::model::model_kind_name(kind));
}

// Length of the short document in the padded windows: not a multiple of P = 8, so MEGABYTE
// has a patch that is part bytes, part pads.
inline constexpr int kShortDocument = 37;

// Two windows: the first T random bytes over all 256 values with byte 0 at several places
// (0 is an ordinary byte, not padding), the second a document of kShortDocument bytes followed
// by pads (kPadId = 256, no loss). 64 + 37 = 101 scored bytes.
inline std::vector<std::int32_t> parity_ids(std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<std::int32_t> ids(static_cast<std::size_t>(kBatch) * kContext);
  for (auto& id : ids) id = byte(gen);
  for (int t : {0, 9, 17, 40}) ids[static_cast<std::size_t>(t)] = 0;
  ids[static_cast<std::size_t>(kContext + 5)] = 0;
  ids[static_cast<std::size_t>(kContext + 6)] = 255;
  for (int t = kShortDocument; t < kContext; ++t)
    ids[static_cast<std::size_t>(kContext + t)] = mb::model::kPadId;
  return ids;
}
inline constexpr std::int64_t kParityScored = kContext + kShortDocument;

// fp32 unless asked: the parity bounds of test_model.cpp and test_training.cpp are fp32's
// (the CUDA default, bf16, is checked against the CPU's bf16 twin in test_model.cpp).
inline std::shared_ptr<Backend> cuda_backend(
    mb::backend::Precision precision = mb::backend::Precision::fp32) {
  return std::shared_ptr<Backend>(mb::backend::make_backend(Device::cuda, precision));
}

// A CPU and a CUDA model of one config with the same seed-initialised parameters, both
// uploaded (the CUDA model's device copy, and in bf16 precision both models' bf16 weight copy).
struct ModelPair {
  std::unique_ptr<Model> cpu, gpu;
};

inline ModelPair make_models(const ModelConfig& config,
                             mb::backend::Precision precision = mb::backend::Precision::fp32) {
  ModelPair p;
  p.cpu = mb::model::make_model(config, kBatch, mb::backend::make_backend(Device::cpu, precision));
  p.gpu = mb::model::make_model(config, kBatch, cuda_backend(precision));
  REQUIRE(p.cpu->backend()->device() == Device::cpu);
  REQUIRE(p.gpu->backend()->device() == Device::cuda);
  p.cpu->parameters().initialize(config.init_std, kInitSeed);
  p.gpu->parameters().initialize(config.init_std, kInitSeed);
  // initialize() is a pure function of the seed and the names: the same host values.
  REQUIRE(p.cpu->parameters().values() == p.gpu->parameters().values());
  p.cpu->upload_parameters();  // on the CPU: the bf16 weight copy, in bf16 precision
  p.gpu->upload_parameters();
  return p;
}

// The elements [offset, offset + size) of a host buffer.
inline std::vector<float> slice(const std::vector<float>& all, const mb::model::ParamInfo& info) {
  const auto first = all.begin() + static_cast<std::ptrdiff_t>(info.offset);
  return std::vector<float>(first, first + static_cast<std::ptrdiff_t>(info.size));
}

inline double max_abs(const std::vector<float>& v) {
  double m = 0.0;
  for (float x : v) m = std::max(m, std::fabs(static_cast<double>(x)));
  return m;
}

// Every tensor of `want_set` (by name) in the host buffer `got` (laid out as `got_set`) against
// the same tensor of `want`, each within `rel` of the tensor's largest |want|
// (gt::check_close_scaled). With `nonzero`, every tensor of `want` must also have a non-zero
// entry, so that a comparison of two untouched buffers cannot pass.
inline void check_tensors(const mb::model::ParameterSet& got_set, const std::vector<float>& got,
                          const mb::model::ParameterSet& want_set, const std::vector<float>& want,
                          double rel, const std::string& what, bool nonzero) {
  REQUIRE(got_set.tensors().size() == want_set.tensors().size());
  for (const mb::model::ParamInfo& w : want_set.tensors()) {
    const mb::model::ParamInfo* g = got_set.find(w.name);
    REQUIRE_MESSAGE(g != nullptr, what << ": no tensor " << w.name);
    REQUIRE_MESSAGE(g->shape == w.shape, what << ": " << w.name << " has another shape");
    const auto want_t = slice(want, w);
    if (nonzero) CHECK_MESSAGE(max_abs(want_t) > 0.0, what << ": " << w.name << " is all 0");
    gt::check_close_scaled(slice(got, *g), want_t, rel, what + " " + w.name);
  }
}

// |got - want| <= rel · max(|got|, |want|) for two scalars (NaN fails).
inline bool close_rel(double got, double want, double rel) {
  return std::fabs(got - want) <= rel * std::max(std::fabs(got), std::fabs(want));
}

}  // namespace gm
