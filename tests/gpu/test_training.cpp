// Training on CUDA against training on the CPU: train::train_step (micro-batches, gradient
// accumulation, clipping, the learning-rate schedule, AdamW with its moments on the device)
// for ten steps from the same parameters and the same batches; that two CUDA runs are
// bit-identical; and that weights downloaded from a CUDA run give the CPU the logits the GPU
// gives (a checkpoint is the same file whichever device wrote it).
//
// Tolerances:
//
//   quantity                        bound                                          why
//   bytes per step, lr              exact (host-side counts and schedule)
//   mean loss of step s (0-based)   relative 1e-5 + 1e-4 · s                       (1)
//   gradient norm of step s         relative 1e-4 · (1 + s)                        (1)
//   final parameters, per tensor    ‖p_gpu − p_cpu‖ ≤ 1e-2 · ‖p_cpu − p_0‖ + 1e-6 · √n  (2)
//   logits of downloaded weights    1e-4 · (|want| + max |want|)                   test_model.cpp
//   two CUDA runs                   bit-identical                                  (3)
//
// (1) Step 0 starts from identical parameters: its loss differs only by the forward's rounding
//     (test_model.cpp: ~1e-6, bound 1e-5), its gradient norm by that of the gradients (a root
//     of a sum of squares dominated by the largest entries, which agree to ~1e-5). Later
//     steps start from parameters that differ by what the optimiser made of the gradients'
//     rounding differences, so the bound grows with the step: 9e-4 at step 9. The differences
//     the optimiser can amplify are in entries whose gradient is near 0 (see (2)), which are
//     exactly the ones that change the loss least, so the real growth should be far smaller
//     (a CPU run against one from parameters perturbed by 1e-5, relative, stays inside every
//     bound of this table).
// (2) AdamW moves each entry by lr · m̂ / (√v̂ + eps): for an entry whose true gradient is 0, or
//     within rounding of it, that is lr · noise / (|noise| + eps), a fraction of lr in a
//     direction the rounding picks, differently on the two devices. One such gradient exists
//     by construction: the key third of every attn.qkv.bias (softmax ignores a shift of a row
//     of scores, so its gradient is rounding noise: 3e-11..4e-10 on the CPU for these models,
//     against 5e-4..1e-1 for the query and value thirds). With the default eps = 1e-8 those
//     entries wander by a few % of lr per step, and a CPU run against a CPU run whose
//     parameters were perturbed by 1e-7 (relative) already ended qkv.bias 0.5% of its
//     movement apart: half the bound below. So these tests use eps = 1e-6, which makes the
//     noise's steps 100 times smaller (the same experiment then stays below 0.1% in every
//     tensor) and leaves entries with real gradients (1e-4 and up) under Adam's usual rule.
//     The comparison is of the whole tensor's distance against the distance training moved
//     it: a few entries near a zero gradient that differ by a fraction of lr do not fail it,
//     while a wrong gradient, a lost moment or a stale device copy moves a tensor somewhere
//     else altogether (a difference of the order of the movement itself). The absolute floor
//     covers the fp32 rounding of the values over ten steps where the movement is tiny (a
//     value rounds to an ulp of itself each step, 1.2e-7 for the norm gains near 1).
// (3) Every CUDA op is deterministic by design (no floating-point atomics; cuBLASLt with one
//     algorithm on one stream; tests/gpu/test_determinism.cpp), and the model's buffers are
//     allocated once per model: two fresh models trained from the same state must agree in
//     every bit, parameters and optimiser moments alike, even at different device addresses.
#include "model_parity.hpp"

#include "cpu/bf16.hpp"
#include "model/optimizer.hpp"
#include "train/train_step.hpp"

#include <array>
#include <limits>
#include <string>

using gm::Model;
using gm::ModelKind;

namespace {

constexpr int kSteps = 10;
constexpr int kAccumulation = 2;
constexpr std::size_t kStepIds =
    static_cast<std::size_t>(kAccumulation) * gm::kBatch * gm::kContext;
constexpr float kDropout = 0.1f;
constexpr double kLogitsRel = 1e-4;

const ModelKind kKinds[] = {ModelKind::megabyte, ModelKind::transformer};

mb::model::TrainConfig train_config() {
  mb::model::TrainConfig tc;
  tc.seed = 5;
  tc.batch_size = gm::kBatch;
  tc.grad_accumulation = kAccumulation;
  tc.steps = kSteps;
  tc.optimizer.lr = 1e-3;
  tc.optimizer.beta1 = 0.9;
  tc.optimizer.beta2 = 0.98;
  tc.optimizer.eps = 1e-6;  // see (2) above
  tc.optimizer.weight_decay = 0.1;
  tc.optimizer.grad_clip = 1.0;
  tc.optimizer.warmup_steps = 2;
  tc.optimizer.decay_power = 1.0;
  return tc;
}

// `steps` steps' worth of windows that a model can learn something from in ten steps: text
// over a 16-letter alphabet that includes byte 0, where each letter is followed by the next
// one 80% of the time and by a random one otherwise. The second window of every micro-batch
// is a short document followed by pads.
std::vector<std::int32_t> training_ids(int steps, std::uint32_t seed) {
  std::array<std::int32_t, 16> alphabet{};
  alphabet[0] = 0;
  for (int i = 1; i < 16; ++i) alphabet[static_cast<std::size_t>(i)] = 'a' + i - 1;
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> letter(0, 15);
  std::bernoulli_distribution jump(0.2);
  std::uniform_int_distribution<int> length(gm::kContext / 4, gm::kContext - 1);
  const int windows = steps * kAccumulation * gm::kBatch;
  std::vector<std::int32_t> ids(static_cast<std::size_t>(windows) * gm::kContext);
  for (int w = 0; w < windows; ++w) {
    const int used = w % gm::kBatch == gm::kBatch - 1 ? length(gen) : gm::kContext;
    int at = letter(gen);
    for (int t = 0; t < gm::kContext; ++t) {
      std::int32_t& id = ids[static_cast<std::size_t>(w) * gm::kContext + t];
      if (t >= used) {
        id = mb::model::kPadId;
        continue;
      }
      id = alphabet[static_cast<std::size_t>(at)];
      at = jump(gen) ? letter(gen) : (at + 1) % 16;
    }
  }
  return ids;
}

struct Run {
  std::vector<mb::train::StepResult> steps;
  std::vector<float> values, m, v;  // host copies after the last step
};

// `steps` train_step calls on `model` (its parameters already uploaded) with a fresh AdamW;
// then the parameters and moments are brought back to the host.
Run train(Model& model, int steps, const std::vector<std::int32_t>& ids) {
  REQUIRE(ids.size() >= static_cast<std::size_t>(steps) * kStepIds);
  const mb::model::TrainConfig tc = train_config();
  mb::model::AdamW optimizer(model);
  Run run;
  for (int s = 0; s < steps; ++s)
    run.steps.push_back(mb::train::train_step(
        model, optimizer, tc, ids.data() + static_cast<std::size_t>(s) * kStepIds, s));
  model.download_parameters();
  optimizer.download();
  run.values = model.parameters().values();
  run.m = optimizer.m();
  run.v = optimizer.v();
  return run;
}

// A fresh CUDA model of `config` with the seed-initialised parameters uploaded.
std::unique_ptr<Model> fresh_gpu_model(const gm::ModelConfig& config) {
  auto m = mb::model::make_model(config, gm::kBatch, gm::cuda_backend());
  m->parameters().initialize(config.init_std, gm::kInitSeed);
  m->upload_parameters();
  return m;
}

std::vector<float> logits_of(Model& model, const std::vector<std::int32_t>& ids) {
  const std::size_t n =
      static_cast<std::size_t>(gm::kBatch) * gm::kContext * mb::model::kByteValues;
  std::vector<float> out(n, std::numeric_limits<float>::quiet_NaN());
  model.logits(out.data(), ids.data(), gm::kBatch);
  return out;
}

}  // namespace

TEST_CASE("gpu training: ten steps track the CPU, losses and final parameters" *
          doctest::test_suite(gm::kSuite)) {
  const auto ids = training_ids(kSteps, 3);
  for (ModelKind kind : kKinds) {
    const std::string what = gm::kind_name(kind);
    CAPTURE(what);
    auto models = gm::make_models(gm::config_of(kind, kDropout));
    const std::vector<float> initial = models.cpu->parameters().values();
    const Run c = train(*models.cpu, kSteps, ids);
    const Run g = train(*models.gpu, kSteps, ids);

    REQUIRE(c.steps.size() == static_cast<std::size_t>(kSteps));
    REQUIRE(g.steps.size() == c.steps.size());
    for (int s = 0; s < kSteps; ++s) {
      CAPTURE(s);
      const mb::train::StepResult& cs = c.steps[static_cast<std::size_t>(s)];
      const mb::train::StepResult& gs = g.steps[static_cast<std::size_t>(s)];
      REQUIRE(cs.bytes > 0);
      CHECK(gs.bytes == cs.bytes);
      CHECK(gs.lr == cs.lr);
      const double cl = cs.loss_sum / static_cast<double>(cs.bytes);
      const double gl = gs.loss_sum / static_cast<double>(gs.bytes);
      CHECK_MESSAGE(gm::close_rel(gl, cl, 1e-5 + 1e-4 * s), what << " step " << s << ": mean loss "
                                                                 << gl << " on CUDA, " << cl
                                                                 << " on the CPU");
      CHECK(cs.grad_norm > 0.0);
      CHECK_MESSAGE(gm::close_rel(gs.grad_norm, cs.grad_norm, 1e-4 * (1 + s)),
                    what << " step " << s << ": gradient norm " << gs.grad_norm << " on CUDA, "
                         << cs.grad_norm << " on the CPU");
    }

    // Final parameters, tensor by tensor: the distance between the two runs against the
    // distance the CPU run moved the tensor.
    const mb::model::ParameterSet& cps = models.cpu->parameters();
    const mb::model::ParameterSet& gps = models.gpu->parameters();
    for (const mb::model::ParamInfo& info : cps.tensors()) {
      const mb::model::ParamInfo* gi = gps.find(info.name);
      REQUIRE(gi != nullptr);
      REQUIRE(gi->offset == info.offset);  // one config, one layout
      double apart = 0.0, moved = 0.0;
      for (std::size_t i = info.offset; i < info.offset + info.size; ++i) {
        const double dc = static_cast<double>(c.values[i]) - initial[i];
        const double dg = static_cast<double>(g.values[i]) - c.values[i];
        moved += dc * dc;
        apart += dg * dg;
      }
      apart = std::sqrt(apart);
      moved = std::sqrt(moved);
      CHECK_MESSAGE(moved > 0.0, what << ": " << info.name << " did not move");
      CHECK_MESSAGE(apart <= 1e-2 * moved + 1e-6 * std::sqrt(static_cast<double>(info.size)),
                    what << ": " << info.name << " ended " << apart
                         << " from the CPU's after moving " << moved);
    }
  }
}

// bf16 (the CUDA default): AdamW rewrites the weights' bf16 copy that the products read. After
// three steps the copy on the device must be exactly the rounded parameters (a stale or
// partly written copy fails at once), and the losses must track the CPU's bf16 twin, whose
// copy is made and kept the same way. Loss bound: 2e-3 relative, for the reason of
// test_model.cpp's bf16 table: near a bf16 rounding boundary the two devices' fp32 inputs to a
// product may round to neighbouring bf16 values, which moves single logits by up to 2e-2 of
// their scale but the mean loss over hundreds of bytes far less.
TEST_CASE("gpu training: bf16 steps keep the weights' bf16 copy exact and track the CPU" *
          doctest::test_suite(gm::kSuite)) {
  const auto ids = training_ids(3, 5);
  for (ModelKind kind : kKinds) {
    const std::string what = gm::kind_name(kind) + " (bf16)";
    CAPTURE(what);
    auto models = gm::make_models(gm::config_of(kind, kDropout), mb::backend::Precision::bf16);
    REQUIRE(models.gpu->view().values_bf16 != nullptr);
    REQUIRE(models.cpu->view().values_bf16 != nullptr);
    const Run c = train(*models.cpu, 3, ids);
    const Run g = train(*models.gpu, 3, ids);  // ends with download_parameters()
    const std::size_t n = models.gpu->parameters().buffer_size();
    std::vector<std::uint16_t> copy(n), want(n);
    models.gpu->backend()->download(copy.data(), models.gpu->view().values_bf16,
                                    n * sizeof(std::uint16_t));
    for (std::size_t i = 0; i < n; ++i) want[i] = mb::kernels::cpu::bf16_bits(g.values[i]);
    gt::check_equal(copy, want, what + ": the device's bf16 weight copy after 3 steps");
    for (std::size_t s = 0; s < c.steps.size(); ++s) {
      CAPTURE(s);
      const double cl = c.steps[s].loss_sum / static_cast<double>(c.steps[s].bytes);
      const double gl = g.steps[s].loss_sum / static_cast<double>(g.steps[s].bytes);
      CHECK_MESSAGE(gm::close_rel(gl, cl, 2e-3), what << " step " << s << ": mean loss " << gl
                                                      << " on CUDA, " << cl << " on the CPU");
    }
  }
}

TEST_CASE("gpu training: two CUDA runs of three steps are bit-identical" *
          doctest::test_suite(gm::kSuite)) {
  const auto ids = training_ids(3, 4);
  for (ModelKind kind : kKinds) {
    const std::string what = gm::kind_name(kind);
    CAPTURE(what);
    const gm::ModelConfig config = gm::config_of(kind, kDropout);
    // Both models alive at once: their buffers are at different device addresses.
    std::unique_ptr<Model> models[2] = {fresh_gpu_model(config), fresh_gpu_model(config)};
    const std::vector<float> initial = models[0]->parameters().values();
    Run runs[2];
    for (int i = 0; i < 2; ++i) runs[i] = train(*models[i], 3, ids);
    // Something happened: the parameters moved away from the initial ones.
    CHECK(gt::differs(runs[0].values, initial));
    for (std::size_t s = 0; s < runs[0].steps.size(); ++s) {
      CAPTURE(s);
      const auto& a = runs[0].steps[s];
      const auto& b = runs[1].steps[s];
      gt::check_bitwise(std::vector<double>{a.loss_sum, a.grad_norm},
                        std::vector<double>{b.loss_sum, b.grad_norm},
                        what + ": loss sum and gradient norm");
    }
    gt::check_bitwise(runs[1].values, runs[0].values, what + ": parameters");
    gt::check_bitwise(runs[1].m, runs[0].m, what + ": AdamW m");
    gt::check_bitwise(runs[1].v, runs[0].v, what + ": AdamW v");
  }
}

TEST_CASE("gpu training: weights downloaded from a CUDA run give the CPU the same logits" *
          doctest::test_suite(gm::kSuite)) {
  const auto ids = training_ids(3, 6);
  const auto eval_ids = gm::parity_ids(31);
  for (ModelKind kind : kKinds) {
    const std::string what = gm::kind_name(kind);
    CAPTURE(what);
    const gm::ModelConfig config = gm::config_of(kind, kDropout);
    auto gpu = fresh_gpu_model(config);
    const std::vector<float> initial = gpu->parameters().values();
    const Run run = train(*gpu, 3, ids);  // ends with download_parameters()
    REQUIRE(gt::differs(run.values, initial));

    // What a checkpoint written from the CUDA run holds, loaded into a CPU model.
    auto cpu = mb::model::make_model(config, gm::kBatch);
    REQUIRE(cpu->parameters().values().size() == run.values.size());
    std::copy(run.values.begin(), run.values.end(), cpu->parameters().values().begin());
    cpu->upload_parameters();  // a no-op on the CPU; what a loader does

    const std::vector<float> want = logits_of(*cpu, eval_ids);
    const std::vector<float> got = logits_of(*gpu, eval_ids);
    REQUIRE(gm::max_abs(want) > 0.0);
    gt::check_close_scaled(got, want, kLogitsRel, what + ": logits, CUDA-trained weights");

    // The same values uploaded into a fresh CUDA model: the device copy round-trips
    // exactly, so the logits are bit-identical to the trained model's.
    auto again = mb::model::make_model(config, gm::kBatch, gm::cuda_backend());
    std::copy(run.values.begin(), run.values.end(), again->parameters().values().begin());
    again->upload_parameters();
    gt::check_bitwise(logits_of(*again, eval_ids), got, what + ": logits after a round trip");
  }
}
