// The whole model's backward pass against central finite differences of its loss, for both
// kinds, with and without dropout. Every tensor is checked at its largest gradients and at
// random entries, so a tensor whose gradient is dropped or misrouted fails.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "model_fixtures.hpp"

using namespace mb::model;

namespace {

// Summed loss of the batch as the training path sees it (dropout masks keyed by `seed`).
double summed_loss(Model& m, const std::vector<std::int32_t>& ids, int batch, bool training,
                   std::uint64_t seed) {
  if (!training) return m.forward(ids.data(), batch, false, seed).loss;
  m.forward(ids.data(), batch, true, seed);
  return m.backward(0.0f).loss;  // backward computes the loss; adding zero gradients is harmless
}

void check_gradients(Model& m, const std::vector<std::int32_t>& ids, int batch, bool training,
                     float eps = 1e-2f) {
  REQUIRE((training || m.config().dropout == 0.0f));
  const std::uint64_t seed = 12345;
  ParameterSet& ps = m.parameters();
  ps.initialize(0.25f, 7);  // large weights: gradients well above fp32 noise
  ps.zero_grads();
  // A backward pass follows a training forward only; without dropout in the config that is
  // the function a forward that is not training computes (the inference pass, which
  // summed_loss() then differentiates numerically).
  m.forward(ids.data(), batch, true, seed);
  const LossSum analytic_loss = m.backward(1.0f);
  CHECK(analytic_loss.count > 0);
  CHECK(std::fabs(analytic_loss.loss - summed_loss(m, ids, batch, training, seed)) < 1e-3);
  const std::vector<float> grads = ps.grads();

  std::mt19937 gen(99);
  int checked = 0;
  for (std::size_t t = 0; t < ps.tensors().size(); ++t) {
    const ParamInfo& info = ps.info(t);
    std::vector<std::size_t> order(info.size);
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return std::fabs(grads[info.offset + a]) > std::fabs(grads[info.offset + b]);
    });
    std::vector<std::size_t> picks(order.begin(),
                                   order.begin() + std::min<std::size_t>(3, info.size));
    std::uniform_int_distribution<std::size_t> any(0, info.size - 1);
    for (int r = 0; r < 2; ++r) picks.push_back(any(gen));
    double largest = 0.0;
    for (std::size_t i : picks) {
      float& w = ps.values()[info.offset + i];
      const float saved = w;
      w = saved + eps;
      const double up = summed_loss(m, ids, batch, training, seed);
      w = saved - eps;
      const double down = summed_loss(m, ids, batch, training, seed);
      w = saved;
      const double numeric = (up - down) / (2.0 * eps);
      const double analytic = grads[info.offset + i];
      largest = std::max(largest, std::fabs(analytic));
      INFO(info.name << "[" << i << "] analytic " << analytic << " numeric " << numeric);
      CHECK(std::fabs(analytic - numeric) <= 3e-3 + 3e-2 * std::fabs(numeric));
      ++checked;
    }
    // Every tensor takes part in the loss: a zero gradient everywhere means a broken backward.
    INFO(info.name);
    CHECK(largest > 1e-6);
  }
  CHECK(checked >= 5 * static_cast<int>(ps.tensors().size()));
}

}  // namespace

TEST_CASE("MEGABYTE gradients match finite differences") {
  auto m = make_model(mt::tiny_megabyte(), 2);
  check_gradients(*m, mt::random_ids(2, 16, 1), 2, false);
}

TEST_CASE("MEGABYTE gradients match finite differences with dropout") {
  auto m = make_model(mt::tiny_megabyte(Activation::gelu, 0.2f), 2);
  check_gradients(*m, mt::random_ids(2, 16, 2), 2, true);
}

TEST_CASE("MEGABYTE gradients with ReLU match finite differences") {
  // Its backward pass reads the activation's sign, not a saved pre-activation. Smaller steps:
  // a step of 1e-2 moves some pre-activations across the kink.
  auto m = make_model(mt::tiny_megabyte(Activation::relu), 2);
  check_gradients(*m, mt::random_ids(2, 16, 6), 2, false, 1e-3f);
}

TEST_CASE("MEGABYTE gradients with padded windows count only real bytes") {
  auto m = make_model(mt::tiny_megabyte(), 2);
  auto ids = mt::random_ids(2, 16, 3);
  for (int t = 9; t < 16; ++t) ids[16 + t] = kPadId;  // the second window's document ends at 9
  check_gradients(*m, ids, 2, false);
  CHECK(m->forward(ids.data(), 2, false, 0).count == 16 + 9);
}

TEST_CASE("byte transformer gradients match finite differences") {
  auto m = make_model(mt::tiny_transformer(), 2);
  check_gradients(*m, mt::random_ids(2, 12, 4), 2, false);
}

TEST_CASE("byte transformer gradients match finite differences with dropout") {
  auto m = make_model(mt::tiny_transformer(0.2f), 2);
  check_gradients(*m, mt::random_ids(2, 12, 5), 2, true);
}
