// Whole models, CUDA backend against CPU backend: both kinds (MEGABYTE and the byte
// transformer) built from the same seed-initialised parameters, run on the same batch (two
// windows, the second a short document followed by pads, byte 0 present); and the CUDA limit
// on attention head width.
//
// Tolerances (fp32 on both sides; the matrix products differ in summation order, cuBLASLt
// against oneDNN, and exp/tanh are the device's against the CPU's approximations, each within
// a few ulps; the op tests put each op's difference at about 1e-6 relative and bound it at
// 1e-4 at most):
//
//   quantity                         bound                                      checked with
//   logits                           1e-4 · (|want| + max |want|)               check_close_scaled
//   forward loss sum (not training)  1e-5 relative; count exact                 close_rel
//   position_losses()                1e-5 · (|want| + max |want|); pads exactly 0
//   training loss from backward()    1e-5 relative; count exact                 close_rel
//   every gradient tensor (by name)  2e-4 · (|want| + max |want| of the tensor)  check_close_scaled
//
// Why these: a logit comes out of ~15 ops in a row (MEGABYTE: global and local stacks of 2
// layers each); each adds its own rounding difference of ~1e-6 of its output's scale, so the
// expected difference is a few 1e-6 of the largest logit and 1e-4 leaves a margin of 10 or
// more. A position loss is logsumexp - logit of values around 5.5 and 0.5: its difference is
// that of the logits, ~1e-6 absolute, against an allowed ~1e-4; the loss sums are double sums
// of those and relative errors do not grow in a sum of positive terms. A gradient went through
// the forward and then back through as many ops again (up to ~30), and some are sums over all
// 128 rows that cancel (bias and embedding gradients), which is why the bound is relative to
// the tensor's largest entry (a near-zero entry keeps the absolute error of the large ones)
// and twice the op tests' 1e-4 (expected: ~1e-5 of the largest entry). One gradient is pure
// rounding noise on both sides, the key third of attn.qkv.bias (softmax ignores a constant
// shift of a row's scores), and passes because its tensor's largest entries are the query and
// value biases'. Real bugs (a stale parameter copy, a missed accumulation, a wrong dropout mask,
// a buffer read before it was written) give differences of the order of the values themselves.
//
// How much room that leaves, measured on the CPU: a CPU model against a CPU model whose every
// parameter was multiplied by (1 + u), |u| <= 1e-5 (about 80 ulps, more than the kernels'
// rounding differences should amount to), passes every bound here; at 5e-5 the logits and a
// first gradient entry fail, at 1e-4 the position losses and entries of several gradients.
//
// bf16 (the CUDA default): both backends round every product's operands to bf16 the same way
// (round to nearest even; the op tests check the rounding bit for bit), but the operands
// themselves differ in their last fp32 bits between devices, and a difference of one fp32 ulp
// can move a value across a bf16 rounding boundary: one operand element then differs by a bf16
// ulp (2^-8 relative). So the bf16 case allows 2e-2 of the scale for logits and gradients and
// 1e-3 relative for the loss sum; a wrong kernel (fp32 on one side, a missed rounding, a stale
// weight) still differs by far more than that in the loss or in some gradient.
//
// GELU everywhere (see model_parity.hpp); dropout 0.2 where on. The dropout masks are a
// counter-based function of (seed, element) computed by the same inline code on both sides
// (tests/gpu/test_dropout.cpp compares them exactly), so the dropout case must match as
// closely as the case without.
#include "model_parity.hpp"

#include "core/error.hpp"

#include <limits>
#include <random>
#include <string>

using gm::Model;
using gm::ModelKind;

namespace {

constexpr std::uint64_t kDropoutSeed = 0x5EEDF00Dull;
constexpr double kLogitsRel = 1e-4;
constexpr double kLossRel = 1e-5;
constexpr double kGradRel = 2e-4;

const ModelKind kKinds[] = {ModelKind::megabyte, ModelKind::transformer};

// (a), (b): logits and the evaluation forward, for a batch of `batch` windows of `ids`.
void check_forward(ModelKind kind, int batch) {
  const std::string what = gm::kind_name(kind) + " (batch " + std::to_string(batch) + ")";
  CAPTURE(what);
  auto models = gm::make_models(gm::config_of(kind, 0.1f));  // dropout is off outside training
  const auto ids = gm::parity_ids(11);
  const std::size_t positions = static_cast<std::size_t>(batch) * gm::kContext;

  // (a) logits: the GPU's start as NaN, so a position it does not write fails.
  std::vector<float> want(positions * mb::model::kByteValues, 0.0f);
  std::vector<float> got(want.size(), std::numeric_limits<float>::quiet_NaN());
  models.cpu->logits(want.data(), ids.data(), batch);
  models.gpu->logits(got.data(), ids.data(), batch);
  REQUIRE(gm::max_abs(want) > 0.0);
  gt::check_close_scaled(got, want, kLogitsRel, what + ": logits");

  // (b) the summed loss and the loss of every position.
  const mb::model::LossSum c = models.cpu->forward(ids.data(), batch, false, 0);
  const mb::model::LossSum g = models.gpu->forward(ids.data(), batch, false, 0);
  const std::int64_t scored = batch == 2 ? gm::kParityScored : gm::kContext;
  CHECK(c.count == scored);
  CHECK(g.count == c.count);
  CHECK(c.loss > 0.0);
  CHECK_MESSAGE(gm::close_rel(g.loss, c.loss, kLossRel),
                what << ": loss sum " << g.loss << " on CUDA, " << c.loss << " on the CPU");
  const std::vector<float> want_pl(models.cpu->position_losses(),
                                   models.cpu->position_losses() + positions);
  const std::vector<float> got_pl(models.gpu->position_losses(),
                                  models.gpu->position_losses() + positions);
  gt::check_close_scaled(got_pl, want_pl, kLossRel, what + ": position losses");
  std::size_t pads = 0;
  for (std::size_t i = 0; i < positions; ++i)
    if (ids[i] == mb::model::kPadId) {
      ++pads;
      CHECK_MESSAGE(want_pl[i] == 0.0f, what << ": CPU loss at pad " << i);
      CHECK_MESSAGE(got_pl[i] == 0.0f, what << ": CUDA loss at pad " << i);
    }
  CHECK(static_cast<std::int64_t>(positions - pads) == scored);
}

// (c): one training forward and backward(1 / count) from zeroed gradients; every gradient
// tensor by name.
void check_gradients(ModelKind kind, float dropout) {
  const std::string what = gm::kind_name(kind) + " (dropout " + std::to_string(dropout) + ")";
  CAPTURE(what);
  auto models = gm::make_models(gm::config_of(kind, dropout));
  const auto ids = gm::parity_ids(23);
  // The evaluation loss, to see below that the training forward did apply dropout.
  const double eval_loss = models.cpu->forward(ids.data(), gm::kBatch, false, 0).loss;

  mb::model::LossSum fwd[2], bwd[2];
  Model* both[2] = {models.cpu.get(), models.gpu.get()};
  for (int i = 0; i < 2; ++i) {
    both[i]->zero_gradients();
    fwd[i] = both[i]->forward(ids.data(), gm::kBatch, true, kDropoutSeed);
    REQUIRE(fwd[i].count == gm::kParityScored);
    bwd[i] = both[i]->backward(1.0f / static_cast<float>(fwd[i].count));
  }
  CHECK(bwd[0].count == gm::kParityScored);
  CHECK(bwd[1].count == bwd[0].count);
  CHECK_MESSAGE(
      gm::close_rel(bwd[1].loss, bwd[0].loss, kLossRel),
      what << ": training loss " << bwd[1].loss << " on CUDA, " << bwd[0].loss << " on the CPU");
  if (dropout > 0.0f) CHECK_MESSAGE(bwd[0].loss != eval_loss, what << ": dropout changed nothing");

  models.gpu->download_gradients();
  gm::check_tensors(models.gpu->parameters(), models.gpu->parameters().grads(),
                    models.cpu->parameters(), models.cpu->parameters().grads(), kGradRel,
                    what + ": gradient of", true);
}

// The bf16 mode against the CPU's bf16 twin: logits, the loss, and every gradient, for kBatch
// windows of `ids`.
void check_bf16(const mb::model::ModelConfig& config, const std::vector<std::int32_t>& ids,
                const std::string& what) {
  CAPTURE(what);
  auto models = gm::make_models(config, mb::backend::Precision::bf16);
  REQUIRE(models.gpu->backend()->precision() == mb::backend::Precision::bf16);
  const std::size_t positions = static_cast<std::size_t>(gm::kBatch) * config.context;
  REQUIRE(ids.size() == positions);
  std::vector<float> want(positions * mb::model::kByteValues, 0.0f);
  std::vector<float> got(want.size(), std::numeric_limits<float>::quiet_NaN());
  models.cpu->logits(want.data(), ids.data(), gm::kBatch);
  models.gpu->logits(got.data(), ids.data(), gm::kBatch);
  gt::check_close_scaled(got, want, 2e-2, what + ": logits");

  mb::model::LossSum bwd[2];
  Model* both[2] = {models.cpu.get(), models.gpu.get()};
  for (int i = 0; i < 2; ++i) {
    both[i]->zero_gradients();
    const auto f = both[i]->forward(ids.data(), gm::kBatch, true, kDropoutSeed);
    bwd[i] = both[i]->backward(1.0f / static_cast<float>(f.count));
  }
  CHECK_MESSAGE(
      gm::close_rel(bwd[1].loss, bwd[0].loss, 1e-3),
      what << ": training loss " << bwd[1].loss << " on CUDA, " << bwd[0].loss << " on the CPU");
  models.gpu->download_gradients();
  gm::check_tensors(models.gpu->parameters(), models.gpu->parameters().grads(),
                    models.cpu->parameters(), models.cpu->parameters().grads(), 2e-2,
                    what + ": gradient of", true);
}

}  // namespace

TEST_CASE("gpu model: bf16 products match the CPU's bf16 twin" * doctest::test_suite(gm::kSuite)) {
  for (ModelKind kind : kKinds)
    check_bf16(gm::config_of(kind, 0.0f), gm::parity_ids(31), gm::kind_name(kind) + " (bf16)");
}

// In bf16, sequences of 64 positions or more run the tiled attention, the tensor-core kernel on
// CUDA (Backend::attention_kernel; the byte transformer above, T = 64, takes it already).
// Here sequences longer than the short attention could take at all (T > 256), heads of 32 and
// 16. Its products also round p, dout and dS to bf16, which the CPU twin does not
// (cpu/attention_bf16.hpp): within the same bounds as the products' rounding above.
TEST_CASE("gpu model: bf16 with the tensor-core attention (long sequences) matches the CPU" *
          doctest::test_suite(gm::kSuite)) {
  for (ModelKind kind : kKinds) {
    mb::model::ModelConfig c = gm::config_of(kind, 0.0f);
    c.context = kind == ModelKind::megabyte ? 8 * 264 : 264;  // 264 global positions
    std::mt19937 gen(77);
    std::uniform_int_distribution<int> byte(0, 255);
    std::vector<std::int32_t> ids(static_cast<std::size_t>(gm::kBatch) * c.context);
    for (auto& id : ids) id = byte(gen);
    REQUIRE(gm::cuda_backend()->attention_kernel(264, 32) !=
            mb::backend::AttentionKernel::short_sequence);
    check_bf16(c, ids, gm::kind_name(kind) + " (bf16, T = " + std::to_string(c.context) + ")");
  }
}

TEST_CASE("gpu model: logits, loss sum and position losses match the CPU" *
          doctest::test_suite(gm::kSuite)) {
  for (ModelKind kind : kKinds) {
    check_forward(kind, gm::kBatch);
    // A batch smaller than the model's max_batch uses part of the arena's buffers.
    check_forward(kind, 1);
  }
}

TEST_CASE("gpu model: every gradient tensor matches the CPU, with and without dropout" *
          doctest::test_suite(gm::kSuite)) {
  for (ModelKind kind : kKinds) {
    check_gradients(kind, 0.2f);
    check_gradients(kind, 0.0f);
  }
}

TEST_CASE("gpu model: attention heads wider than 128 are refused on CUDA, naming the key" *
          doctest::test_suite(gm::kSuite)) {
  REQUIRE(mb::backend::kCudaMaxHeadDim == 128);
  auto backend = gm::cuda_backend();
  // Throws mb::Error whose where() is `key` and whose text names the key and the limit, on
  // the CUDA backend and for a CUDA plan (`megabyte bench --memory`, no device needed); the
  // CPU takes the same config.
  auto refused = [&](const gm::ModelConfig& config, const std::string& key) {
    CAPTURE(key);
    for (int plan = 0; plan < 2; ++plan) {
      CAPTURE(plan);
      bool threw = false;
      try {
        if (plan == 0)
          static_cast<void>(mb::model::make_model(config, 1, backend));
        else
          static_cast<void>(mb::model::make_model_plan(config, 1, gm::Device::cuda,
                                                       mb::backend::Precision::bf16));
      } catch (const mb::Error& e) {
        threw = true;
        const std::string text = e.what();
        CHECK(e.where() == key);
        CHECK_MESSAGE(text.find(key) != std::string::npos, text);
        CHECK_MESSAGE(text.find("128") != std::string::npos, text);
      }
      CHECK_MESSAGE(threw, "no mb::Error for " << key);
    }
    CHECK_NOTHROW(static_cast<void>(mb::model::make_model(config, 1)));
  };
  auto accepted = [&](const gm::ModelConfig& config) {
    std::unique_ptr<Model> m;
    CHECK_NOTHROW(m = mb::model::make_model(config, 1, backend));
    CHECK(m != nullptr);
  };

  // MEGABYTE's global stack is P·D_G wide: 8 · 32 = 256, one head of 256; two heads of 128
  // are the widest allowed.
  gm::ModelConfig mega = gm::config_of(gm::ModelKind::megabyte, 0.0f);
  mega.global = {32, 1, 1};
  mega.local = {32, 1, 2};
  refused(mega, "model.global.heads");
  mega.global.heads = 2;
  accepted(mega);
  // The local stack is D_L wide.
  mega.local = {256, 1, 1};
  refused(mega, "model.local.heads");
  mega.local.heads = 2;
  accepted(mega);

  gm::ModelConfig byte = gm::config_of(gm::ModelKind::transformer, 0.0f);
  byte.global = {256, 1, 1};
  refused(byte, "model.global.heads");
  byte.global.heads = 2;
  accepted(byte);
}
