// The inference pass (TransformerStack::infer, what eval, logits and validation run): it keeps
// nothing for a backward pass, runs each block in place on one buffer, and fuses FC1 with a
// ReLU, yet gives forward()'s output (training false) bit for bit, in both precisions, with
// and without bf16 activations and recomputation, for short sequences (the local model's) and
// long ones. And a model refuses a backward pass after a forward that was not training.
#include <doctest/doctest.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "model_fixtures.hpp"
#include "stack_fixture.hpp"

using mb::backend::Precision;
using mb::model::Activation;
using mb::model::StackShape;

namespace {

void check_same_as_forward(Precision precision, Activation activation, bool bf16_activations,
                           bool recompute, int sequences, int length) {
  CAPTURE(std::string(mb::backend::precision_name(precision)));
  CAPTURE(activation == Activation::relu);
  CAPTURE(bf16_activations);
  CAPTURE(recompute);
  CAPTURE(length);
  StackShape shape;
  shape.layers = 2;
  shape.width = 24;
  shape.heads = 3;
  shape.hidden = 64;
  shape.activation = activation;
  shape.dropout = 0.1f;  // not applied: neither pass is training
  auto backend = mb::backend::make_backend(mb::backend::Device::cpu, precision);
  const int rows = sequences * length;
  mt::StackUnderTest s(*backend, shape, rows, length, bf16_activations, recompute);
  const std::size_t n = static_cast<std::size_t>(rows) * shape.width;
  const auto in = mt::random_values(n, 5);
  std::vector<float> saved(n, 1.0f), inferred(n, 2.0f);
  s.stack->forward(saved.data(), in.data(), sequences, length, false, 0);
  s.stack->infer(inferred.data(), in.data(), sequences, length);
  CHECK(std::memcmp(saved.data(), inferred.data(), n * sizeof(float)) == 0);
  // In place on a buffer of its own: the input is not touched, and a second run repeats it.
  CHECK(in == mt::random_values(n, 5));
  std::vector<float> again(n, 3.0f);
  s.stack->infer(again.data(), in.data(), sequences, length);
  CHECK(again == inferred);
}

}  // namespace

TEST_CASE("the inference pass gives forward()'s output bit for bit") {
  for (Activation a : {Activation::relu, Activation::gelu})
    for (bool recompute : {false, true})
      for (auto [sequences, length] : {std::pair{5, 8}, std::pair{2, 40}}) {
        check_same_as_forward(Precision::fp32, a, false, recompute, sequences, length);
        check_same_as_forward(Precision::bf16, a, false, recompute, sequences, length);
        check_same_as_forward(Precision::bf16, a, true, recompute, sequences, length);
      }
}

TEST_CASE("a model's backward pass refuses to follow a forward that was not training") {
  for (const mb::model::ModelConfig& c : {mt::tiny_megabyte(), mt::tiny_transformer()}) {
    auto m = mb::model::make_model(c, 2);
    m->parameters().initialize(0.1f, 3);
    m->upload_parameters();
    const auto ids = mt::random_ids(2, c.context, 4);
    m->forward(ids.data(), 2, false, 0);
    CHECK_THROWS_AS(m->backward(1.0f), std::logic_error);
    std::vector<float> logits(static_cast<std::size_t>(2) * c.context * mb::model::kByteValues);
    m->forward(ids.data(), 2, true, 0);
    m->logits(logits.data(), ids.data(), 2);
    CHECK_THROWS_AS(m->backward(1.0f), std::logic_error);
    m->forward(ids.data(), 2, true, 0);
    CHECK_NOTHROW(m->backward(1.0f));
  }
}

namespace {

struct EvalRun {
  mb::model::LossSum loss;
  std::vector<float> position_losses, logits;
  mb::model::ModelMemory memory;
};

EvalRun evaluate_with(const mb::model::ModelConfig& c, Precision precision,
                      mb::model::ActivationPolicy policy) {
  const int B = 2;
  auto m = mb::model::make_model(
      c, B, mb::backend::make_backend(mb::backend::Device::cpu, precision), policy);
  m->parameters().initialize(0.2f, 9);
  m->upload_parameters();
  auto ids = mt::random_ids(B, c.context, 10);
  ids[static_cast<std::size_t>(c.context) + 3] = mb::model::kPadId;
  EvalRun r;
  r.loss = m->forward(ids.data(), B, false, 0);
  r.position_losses.assign(m->position_losses(),
                           m->position_losses() + static_cast<std::size_t>(B) * c.context);
  r.logits.resize(static_cast<std::size_t>(B) * c.context * mb::model::kByteValues);
  m->logits(r.logits.data(), ids.data(), B);
  r.memory = m->memory();
  if (policy.inference_only) {
    CHECK_THROWS_AS(m->forward(ids.data(), B, true, 0), std::logic_error);
    CHECK_THROWS_AS(m->zero_gradients(), std::logic_error);
  }
  return r;
}

}  // namespace

TEST_CASE("a model for inference only: the same losses and logits in less memory, no training") {
  for (const mb::model::ModelConfig& c :
       {mt::tiny_megabyte(Activation::relu), mt::tiny_megabyte(Activation::gelu, 0.1f),
        mt::tiny_transformer(0.1f)})
    for (Precision precision : {Precision::fp32, Precision::bf16})
      for (int chunk : {0, 3}) {
        if (chunk > 0 && c.kind != mb::model::ModelKind::megabyte) continue;
        CAPTURE(c.kind == mb::model::ModelKind::megabyte);
        CAPTURE(std::string(mb::backend::precision_name(precision)));
        CAPTURE(chunk);
        mb::model::ActivationPolicy trainable;
        trainable.local_chunk = chunk;
        mb::model::ActivationPolicy inference = trainable;
        inference.inference_only = true;
        const EvalRun a = evaluate_with(c, precision, trainable);
        const EvalRun b = evaluate_with(c, precision, inference);
        CHECK(b.loss.count == a.loss.count);
        CHECK(b.loss.loss == a.loss.loss);
        CHECK(b.position_losses == a.position_losses);
        CHECK(b.logits == a.logits);
        CHECK(b.memory.gradients == 0);
        CHECK(a.memory.gradients > 0);
        CHECK(b.memory.activations < a.memory.activations);
      }
}

TEST_CASE("inference_policy: the run's local chunks, on the CPU at most 2,048 rows of patches") {
  using mb::backend::Device;
  mb::model::ModelConfig c = mt::tiny_megabyte();
  c.patch_size = 8;
  mb::model::TrainConfig t;
  t.recompute = mb::model::Recompute::all;
  t.local_chunk = 0;
  auto p = mb::model::inference_policy(c, t, Device::cpu);
  CHECK(p.inference_only);
  CHECK(p.local_chunk == mb::model::kCpuInferenceLocalRows / 8);
  CHECK(mb::model::inference_policy(c, t, Device::cuda).local_chunk == 0);
  t.local_chunk = 100;
  CHECK(mb::model::inference_policy(c, t, Device::cpu).local_chunk == 100);
  CHECK(mb::model::inference_policy(c, t, Device::cuda).local_chunk == 100);
  t.local_chunk = 1000;
  CHECK(mb::model::inference_policy(c, t, Device::cpu).local_chunk == 256);
  c.patch_size = 4096;  // a patch longer than the rows: one patch at a time
  CHECK(mb::model::inference_policy(c, t, Device::cpu).local_chunk == 1);
  const mb::model::ModelConfig bt = mt::tiny_transformer();
  CHECK(mb::model::inference_policy(bt, t, Device::cpu).local_chunk == 0);
}
