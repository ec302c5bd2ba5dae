// The local model a chunk of patches at a time (ActivationPolicy::local_chunk, train.local_chunk):
// its activations are O(chunk), not O(T). Every position is computed by the same row-wise ops
// as without chunks and every dropout mask is the one the whole batch draws, so the logits, the
// position losses and the rows of every activation are the same bits. The parameter gradients
// are too: every sum over rows into a parameter's gradient (weights, biases, norms, embeddings,
// the tied head) adds the rows in order to the gradient itself (cpu/weight_gradient.hpp), so
// chunks of rows in order repeat the unchunked sums. The loss sums add the chunks' sums, so
// they agree to rounding.
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
  LossSum train_loss, eval_loss;
  std::vector<float> grads, position_losses, logits;
};

Run run(const ModelConfig& c, int chunk, Precision precision, bool recompute_local = false) {
  ActivationPolicy policy;
  policy.local_chunk = chunk;
  policy.recompute_local = recompute_local;
  const int B = 2;
  auto m = make_model(c, B, mb::backend::make_backend(mb::backend::Device::cpu, precision), policy);
  m->parameters().initialize(0.3f, 21);
  m->upload_parameters();
  auto ids = mt::random_ids(B, c.context, 8);
  ids[static_cast<std::size_t>(c.context) + 5] = kPadId;  // a padded position: no loss
  Run r;
  m->zero_gradients();
  const LossSum counted = m->forward(ids.data(), B, true, 77);
  r.train_loss = m->backward(1.0f / static_cast<float>(counted.count));
  m->download_gradients();
  r.grads = m->parameters().grads();
  r.eval_loss = m->forward(ids.data(), B, false, 0);
  r.position_losses.assign(m->position_losses(),
                           m->position_losses() + static_cast<std::size_t>(B) * c.context);
  r.logits.resize(static_cast<std::size_t>(B) * c.context * kByteValues);
  m->logits(r.logits.data(), ids.data(), B);
  return r;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("local chunks of 1, a divisor, a non-divisor and all patches compute the same") {
  // K = 4 patches a window, B = 2: 8 patches in all.
  const ModelConfig c = mt::tiny_megabyte(Activation::gelu, 0.2f);
  for (Precision precision : {Precision::fp32, Precision::bf16}) {
    const Run whole = run(c, 0, precision);
    for (int chunk : {1, 2, 3, 8, 100}) {
      CAPTURE(chunk);
      CAPTURE(std::string(mb::backend::precision_name(precision)));
      const Run r = run(c, chunk, precision);
      CHECK(same_bits(r.position_losses, whole.position_losses));
      CHECK(same_bits(r.logits, whole.logits));
      CHECK(r.eval_loss.count == whole.eval_loss.count);
      CHECK(r.eval_loss.loss == doctest::Approx(whole.eval_loss.loss).epsilon(1e-12));
      CHECK(r.train_loss.count == whole.train_loss.count);
      CHECK(r.train_loss.loss == doctest::Approx(whole.train_loss.loss).epsilon(1e-12));
      CHECK(same_bits(r.grads, whole.grads));
      // Chunks and recomputation together.
      const Run both = run(c, chunk, precision, true);
      CHECK(same_bits(both.grads, r.grads));
    }
  }
}

TEST_CASE("local chunks shrink the plan to one chunk's local activations") {
  ModelConfig c = mt::tiny_megabyte();
  c.context = 64;  // K = 16
  auto bytes = [&](int chunk) {
    ActivationPolicy p;
    p.local_chunk = chunk;
    return make_model_plan(c, 2, mb::backend::Device::cpu, Precision::fp32, p)
        ->memory()
        .activations;
  };
  CHECK(bytes(4) < bytes(16));
  CHECK(bytes(16) < bytes(0));
  CHECK(bytes(32) == bytes(0));  // all 32 patches of the batch
  CHECK(bytes(1000) == bytes(0));
}
