// Activation recomputation (ActivationPolicy, train.recompute): each layer keeps its input only
// and its backward pass runs its forward again, with the same kernels in the same order and the
// same dropout masks, so every gradient is the same bits as without it; and the model needs
// less activation memory.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "model_fixtures.hpp"

using namespace mb::model;
using mb::backend::Precision;

namespace {

struct Run {
  LossSum loss;
  std::vector<float> grads;
};

// One forward and backward of a batch of 2 windows from the same initial weights, with the
// gradients of every tensor (the whole buffer, so a single differing bit anywhere shows).
Run train_once(const ModelConfig& c, Precision precision, const ActivationPolicy& policy) {
  auto m = make_model(c, 2, mb::backend::make_backend(mb::backend::Device::cpu, precision), policy);
  m->parameters().initialize(0.3f, 11);
  m->upload_parameters();
  const auto ids = mt::random_ids(2, c.context, 5);
  m->zero_gradients();
  const LossSum counted = m->forward(ids.data(), 2, true, 1234);
  Run r;
  r.loss = m->backward(1.0f / static_cast<float>(counted.count));
  m->download_gradients();
  r.grads = m->parameters().grads();
  return r;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

ModelConfig deeper(ModelConfig c) {
  // Three layers per stack: the top layer's activations are reused from the forward pass and
  // the others recomputed, so both paths are exercised.
  c.global.layers = 3;
  if (c.kind == ModelKind::megabyte) c.local.layers = 3;
  return c;
}

}  // namespace

TEST_CASE("recomputation gives the same gradients, bit for bit, in both kinds and precisions") {
  const ModelConfig kinds[] = {deeper(mt::tiny_megabyte(Activation::gelu, 0.2f)),
                               deeper(mt::tiny_megabyte(Activation::relu, 0.0f)),
                               deeper(mt::tiny_transformer(0.2f))};
  for (const ModelConfig& c : kinds) {
    const bool megabyte = c.kind == ModelKind::megabyte;
    std::vector<ActivationPolicy> policies{{true, false}};
    if (megabyte) policies.insert(policies.end(), {{false, true}, {true, true}});
    for (Precision precision : {Precision::fp32, Precision::bf16}) {
      const Run plain = train_once(c, precision, {});
      for (const ActivationPolicy& p : policies) {
        CAPTURE(std::string(model_kind_name(c.kind)));
        CAPTURE(std::string(mb::backend::precision_name(precision)));
        CAPTURE(p.recompute_global);
        CAPTURE(p.recompute_local);
        const Run again = train_once(c, precision, p);
        CHECK(again.loss.loss == plain.loss.loss);
        CHECK(again.loss.count == plain.loss.count);
        CHECK(same_bits(again.grads, plain.grads));
      }
    }
  }
}

TEST_CASE("recomputation keeps each layer's input only: the plan shrinks by the rest") {
  ModelConfig c = deeper(mt::tiny_megabyte());
  const int B = 2;
  auto bytes = [&](const ActivationPolicy& p) {
    return make_model_plan(c, B, mb::backend::Device::cpu, Precision::fp32, p)
        ->memory()
        .activations;
  };
  const std::size_t plain = bytes({}), global = bytes({true, false}), local = bytes({false, true}),
                    both = bytes({true, true});
  CHECK(global < plain);
  CHECK(local < plain);
  CHECK(both < global);
  CHECK(both < local);
  // The local stack, counted by hand: rows N = B·T, C = D_L = 8, hidden 16, 2 heads, 3 layers.
  // Without recomputation each layer keeps ln1 and ln2 statistics (4 N), q, k, v (3 N C), the
  // attention's output (N C), lse (2 N), mid (N C), the pre-activation and the activation
  // (2 N·16), besides its input; with it, one such set serves every layer. Every slice is
  // rounded up to the arena's 256 bytes: at N = 32 each is a multiple already except the
  // statistics and lse (32·4 = 128 bytes -> 256).
  const std::size_t N = static_cast<std::size_t>(B) * c.context, C = 8, hidden = 16;
  auto slice = [](std::size_t floats) { return (floats * 4 + 255) / 256 * 256; };
  const std::size_t per_layer = 4 * slice(N) + slice(3 * N * C) + slice(N * C) + slice(2 * N) +
                                slice(N * C) + 2 * slice(N * hidden);
  CHECK(plain - local == (3 - 1) * per_layer);
}

TEST_CASE("a byte transformer has no local stack to recompute") {
  CHECK_THROWS_AS(
      make_model(mt::tiny_transformer(), 1, mb::backend::make_backend(mb::backend::Device::cpu),
                 ActivationPolicy{false, true}),
      std::logic_error);
}

TEST_CASE("train.recompute maps to each kind's stacks") {
  const ModelConfig mega = mt::tiny_megabyte(), tf = mt::tiny_transformer();
  CHECK(activation_policy(mega, Recompute::none) == ActivationPolicy{false, false});
  CHECK(activation_policy(mega, Recompute::global) == ActivationPolicy{true, false});
  CHECK(activation_policy(mega, Recompute::local) == ActivationPolicy{false, true});
  CHECK(activation_policy(mega, Recompute::all) == ActivationPolicy{true, true});
  CHECK(activation_policy(tf, Recompute::global) == ActivationPolicy{true, false});
  CHECK(activation_policy(tf, Recompute::all) == ActivationPolicy{true, false});
}
