// Small models and batches for the whole-model tests.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "model/config.hpp"
#include "model/model.hpp"

namespace mt {

// A MEGABYTE small enough for finite differences: T = 16, P = 4 (K = 4 patches), D_G = 4
// (global width 16), D_L = 8, one layer each, two heads each.
inline mb::model::ModelConfig tiny_megabyte(mb::model::Activation act = mb::model::Activation::gelu,
                                            float dropout = 0.0f) {
  mb::model::ModelConfig c;
  c.kind = mb::model::ModelKind::megabyte;
  c.context = 16;
  c.patch_size = 4;
  c.global = {4, 1, 2};
  c.local = {8, 1, 2};
  c.ffn_multiplier = 2;
  c.activation = act;
  c.dropout = dropout;
  return c;
}

inline mb::model::ModelConfig tiny_transformer(float dropout = 0.0f) {
  mb::model::ModelConfig c;
  c.kind = mb::model::ModelKind::transformer;
  c.context = 12;
  c.patch_size = 1;
  c.global = {8, 2, 2};
  c.ffn_multiplier = 2;
  c.activation = mb::model::Activation::gelu;
  c.dropout = dropout;
  return c;
}

// `batch` windows of random bytes (every value 0..255 possible, 0 included).
inline std::vector<std::int32_t> random_ids(int batch, int T, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<std::int32_t> ids(static_cast<std::size_t>(batch) * T);
  for (auto& id : ids) id = byte(gen);
  return ids;
}

}  // namespace mt
