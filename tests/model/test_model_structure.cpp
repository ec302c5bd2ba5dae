// What the model computes, apart from its gradients: causality, independence of the windows
// of a batch, the tied head, and the parameter counts of the paper's shapes.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "backend/backend.hpp"
#include "model_fixtures.hpp"

using namespace mb::model;

namespace {

std::vector<float> all_logits(Model& m, const std::vector<std::int32_t>& ids, int batch) {
  std::vector<float> out(static_cast<std::size_t>(batch) * m.config().context * kByteValues);
  m.logits(out.data(), ids.data(), batch);
  return out;
}

// Changing byte t must leave the logits of positions 0..t exactly as they were (they are
// predictions of bytes 0..t, made before byte t is seen), and must change later ones.
void check_causality(Model& m, const std::vector<int>& positions) {
  const int T = m.config().context;
  m.parameters().initialize(0.3f, 11);
  const auto ids = mt::random_ids(1, T, 21);
  const auto base = all_logits(m, ids, 1);
  for (int t : positions) {
    auto changed = ids;
    changed[t] = (changed[t] + 101) % 256;
    const auto after = all_logits(m, changed, 1);
    for (int pos = 0; pos <= t; ++pos)
      for (int v = 0; v < kByteValues; ++v) {
        const std::size_t i = static_cast<std::size_t>(pos) * kByteValues + v;
        INFO("changed byte " << t << ", logit of position " << pos);
        REQUIRE(after[i] == base[i]);
      }
    if (t + 1 < T) {
      double diff = 0.0;
      for (int v = 0; v < kByteValues; ++v) {
        const std::size_t i = static_cast<std::size_t>(t + 1) * kByteValues + v;
        diff += std::fabs(after[i] - base[i]);
      }
      INFO("changed byte " << t << " must reach position " << t + 1);
      CHECK(diff > 0.0);
    }
  }
}

// Windows of a batch are independent (each window's logits alone equal its rows of the batch's),
// and the batch's loss is the cross-entropy of the logits logits() returns. In bf16 too: the
// products round their operands, but the tied head is fp32 both in the loss and in logits()
// (Backend::head_logits), so that sampling draws from the distribution the loss scores.
void check_loss_of_logits(mb::backend::Precision precision) {
  auto m = make_model(mt::tiny_megabyte(Activation::relu), 3,
                      mb::backend::make_backend(mb::backend::Device::cpu, precision));
  m->parameters().initialize(0.3f, 5);
  m->upload_parameters();
  const int T = 16;
  const auto ids = mt::random_ids(3, T, 8);
  const auto batch_logits = all_logits(*m, ids, 3);
  const LossSum batch_loss = m->forward(ids.data(), 3, false, 0);
  double loss_by_hand = 0.0;
  for (int b = 0; b < 3; ++b) {
    std::vector<std::int32_t> one(ids.begin() + b * T, ids.begin() + (b + 1) * T);
    const auto single = all_logits(*m, one, 1);
    for (std::size_t i = 0; i < single.size(); ++i)
      REQUIRE(std::fabs(single[i] - batch_logits[b * single.size() + i]) <= 1e-5f);
    for (int t = 0; t < T; ++t) {
      const float* row = single.data() + static_cast<std::size_t>(t) * kByteValues;
      double mx = row[0], sum = 0.0;
      for (int v = 1; v < kByteValues; ++v) mx = std::max<double>(mx, row[v]);
      for (int v = 0; v < kByteValues; ++v) sum += std::exp(row[v] - mx);
      loss_by_hand += mx + std::log(sum) - row[one[t]];
    }
  }
  CHECK(batch_loss.count == 3 * T);
  CHECK(batch_loss.loss == doctest::Approx(loss_by_hand).epsilon(1e-5));
}

}  // namespace

TEST_CASE("MEGABYTE is causal at patch starts, middles and ends") {
  auto m = make_model(mt::tiny_megabyte(Activation::relu), 1);
  // P = 4: starts 0, 4, 8, 12; middles 1, 6, 10; ends 3, 7, 11, 15.
  check_causality(*m, {0, 1, 3, 4, 6, 7, 8, 10, 11, 12, 15});
}

TEST_CASE("byte transformer is causal") {
  auto m = make_model(mt::tiny_transformer(), 1);
  check_causality(*m, {0, 1, 5, 10, 11});
}

TEST_CASE("windows of a batch are independent and the loss is the tied head's cross-entropy") {
  check_loss_of_logits(mb::backend::Precision::fp32);
}

TEST_CASE("bf16: the loss is the cross-entropy of the logits that logits() returns") {
  check_loss_of_logits(mb::backend::Precision::bf16);
}

TEST_CASE("a fresh model predicts nearly uniformly: loss close to ln 256 per byte") {
  ModelConfig c = mt::tiny_megabyte(Activation::relu);
  auto m = make_model(c, 2);
  m->parameters().initialize(c.init_std, 1);
  const auto ids = mt::random_ids(2, 16, 9);
  const LossSum l = m->forward(ids.data(), 2, false, 0);
  CHECK(l.loss / l.count == doctest::Approx(std::log(256.0)).epsilon(1e-3));
}

TEST_CASE("initialisation: truncated normal of std 0.006, biases 0, norm gains 1") {
  ModelConfig c = mt::tiny_megabyte();
  c.context = 64;
  auto m = make_model(c, 1);
  ParameterSet& ps = m->parameters();
  ps.initialize(0.006f, 3);
  double sum = 0, sq = 0;
  std::size_t n = 0;
  for (const ParamInfo& t : ps.tensors()) {
    const float* p = ps.value(&t - ps.tensors().data());
    for (std::size_t i = 0; i < t.size; ++i) {
      if (t.role == ParamRole::bias) REQUIRE(p[i] == 0.0f);
      if (t.role == ParamRole::norm_gain) REQUIRE(p[i] == 1.0f);
      if (t.role == ParamRole::weight) {
        REQUIRE(std::fabs(p[i]) <= 2 * 0.006f * 1.0001f);
        sum += p[i];
        sq += double(p[i]) * p[i];
        ++n;
      }
    }
  }
  const double mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
  CHECK(std::fabs(mean) < 2e-4);
  // A normal truncated at ±2σ has standard deviation 0.8796σ.
  CHECK(sd == doctest::Approx(0.006 * 0.8796).epsilon(0.03));
  // Same seed, same weights; another seed, other weights.
  const std::vector<float> first = ps.values();
  ps.initialize(0.006f, 3);
  CHECK(ps.values() == first);
  ps.initialize(0.006f, 4);
  CHECK(ps.values() != first);
}

TEST_CASE("MEGABYTE's local model starts every patch from the pad, not the previous byte") {
  // With w_GL = 0 the local model sees only local byte embeddings. Position 0 of every patch
  // must then see the same input (the pad) and give the same logits, whatever the last byte
  // of the previous patch was; position 1 sees the patch's first byte.
  auto m = make_model(mt::tiny_megabyte(Activation::relu), 1);
  ParameterSet& ps = m->parameters();
  ps.initialize(0.3f, 2);
  const ParamInfo* wgl = ps.find("local.global_projection.weight");
  REQUIRE(wgl);
  std::fill_n(ps.values().begin() + wgl->offset, wgl->size, 0.0f);
  auto ids = mt::random_ids(1, 16, 4);
  ids[3] = 10;  // the last bytes of patches 0, 1, 2 all differ
  ids[7] = 20;
  ids[11] = 30;
  ids[4] = ids[8] = 77;  // patches 1 and 2 start with the same byte
  ids[12] = 78;
  const auto logits = all_logits(*m, ids, 1);
  auto row = [&](int t) {
    return std::vector<float>(logits.begin() + t * kByteValues,
                              logits.begin() + (t + 1) * kByteValues);
  };
  CHECK(row(4) == row(0));
  CHECK(row(8) == row(0));
  CHECK(row(12) == row(0));
  CHECK(row(5) == row(9));   // both follow byte 77 at position 1
  CHECK(row(13) != row(9));  // follows 78
}
