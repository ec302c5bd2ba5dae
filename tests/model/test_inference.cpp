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
