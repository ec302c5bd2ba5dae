// The backend layer: the arena, device names, the GPU peak table, and the model's memory plan
// (what `megabyte bench --memory` prints) against a count made by hand.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>
#include <stdexcept>

#include "backend/arena.hpp"
#include "backend/backend.hpp"
#include "backend/device_peaks.hpp"
#include "error_of.hpp"
#include "cpu/bf16.hpp"
#include "cpu/matmul.hpp"
#include "cpu/matmul_few_rows.hpp"
#include "model/model.hpp"
#include "model/optimizer.hpp"
#include "model/transformer_stack.hpp"
#include "train/memory_plan.hpp"

using mb::backend::Arena;
using mb::backend::Device;
using mb::backend::Precision;
using mb::test::contains;
using mb::test::error_of;

TEST_CASE("an arena hands out aligned, disjoint slices of one zeroed allocation") {
  auto cpu = mb::backend::make_backend(Device::cpu);
  Arena arena;
  auto a = arena.reserve<float>(3);
  auto b = arena.reserve<std::int32_t>(1000);
  auto c = arena.reserve<float>(64);
  CHECK(a.get() == nullptr);  // nothing is allocated before commit()
  CHECK(arena.bytes() == 256 + 4096 + 256);
  arena.commit(*cpu);
  const auto base = reinterpret_cast<std::uintptr_t>(arena.base());
  CHECK(base % Arena::kAlignment == 0);
  CHECK(reinterpret_cast<std::uintptr_t>(a.get()) == base);
  CHECK(reinterpret_cast<std::uintptr_t>(b.get()) == base + 256);
  CHECK(reinterpret_cast<std::uintptr_t>(c.get()) == base + 256 + 4096);
  CHECK(b.size() == 1000);
  for (int i = 0; i < 1000; ++i) REQUIRE(b.get()[i] == 0);
  CHECK_THROWS_AS(arena.reserve<float>(1), std::logic_error);
}

TEST_CASE("the CPU backend starts buffers of 2 MiB and more on a huge-page boundary") {
  // So that the kernel can back them with 2 MiB pages where it is asked to (madvise): a
  // generation step streams the weights and KV caches once per patch (cpu_backend.cpp).
  auto cpu = mb::backend::make_backend(Device::cpu);
  constexpr std::uintptr_t kHugePage = std::uintptr_t{2} << 20;
  for (std::size_t bytes : {std::size_t{2} << 20, (std::size_t{3} << 20) + 12345}) {
    mb::backend::DeviceMemory m(*cpu, bytes);
    CHECK(reinterpret_cast<std::uintptr_t>(m.get()) % kHugePage == 0);
    std::memset(m.get(), 0x5a, bytes);  // every byte asked for is there (ASan checks the size)
  }
  mb::backend::DeviceMemory small(*cpu, 1000);
  CHECK(reinterpret_cast<std::uintptr_t>(small.get()) % 256 == 0);
}

TEST_CASE("devices are named cpu and cuda; anything else is refused naming the option") {
  CHECK(mb::backend::parse_device("cpu", "--device") == Device::cpu);
  CHECK(mb::backend::parse_device("cuda", "--device") == Device::cuda);
  const std::string msg = error_of([] { (void)mb::backend::parse_device("gpu", "--device"); });
  CHECK(contains(msg, "--device"));
  CHECK(contains(msg, "gpu"));
  CHECK(mb::backend::device_name(Device::cuda) == "cuda");
}

TEST_CASE("asking for CUDA where it cannot be used says why") {
  std::string why;
  if (mb::backend::cuda_available(&why)) return;  // a GPU machine: nothing to refuse
  CHECK_FALSE(why.empty());
  const std::string msg = error_of([] { (void)mb::backend::make_backend(Device::cuda); });
  CHECK(contains(msg, "--device cuda"));
  CHECK(contains(msg, why));
  CHECK(mb::backend::default_device() == Device::cpu);
}

TEST_CASE("the CPU backend takes the short attention for the shapes an A100 or H100 takes") {
  using mb::backend::AttentionKernel;
  auto cpu = mb::backend::make_backend(Device::cpu);
  CHECK(cpu->attention_kernel(8, 32) == AttentionKernel::short_sequence);    // a text patch
  CHECK(cpu->attention_kernel(192, 64) == AttentionKernel::short_sequence);  // an image patch
  CHECK(cpu->attention_kernel(125, 128) == AttentionKernel::short_sequence);
  CHECK(cpu->attention_kernel(126, 128) == AttentionKernel::tiled);
  CHECK(cpu->attention_kernel(257, 32) == AttentionKernel::tiled);
}

TEST_CASE("in bf16 the backend takes the tiled (tensor-core) attention from 64 positions") {
  using mb::backend::AttentionKernel;
  using mb::backend::Precision;
  auto fp32 = mb::backend::make_backend(Device::cpu, Precision::fp32);
  auto bf16 = mb::backend::make_backend(Device::cpu, Precision::bf16);
  CHECK(fp32->attention_kernel(192, 64) == AttentionKernel::short_sequence);  // an image patch
  CHECK(bf16->attention_kernel(192, 64) == AttentionKernel::tiled_bf16);      // tensor cores
  CHECK(bf16->attention_kernel(64, 16) == AttentionKernel::tiled_bf16);
  CHECK(bf16->attention_kernel(63, 64) == AttentionKernel::short_sequence);  // under one tile
  CHECK(bf16->attention_kernel(8, 64) == AttentionKernel::short_sequence);   // a text patch
  // Heads the bf16 attention does not take: the fp32 kernels, short or tiled by length.
  CHECK(bf16->attention_kernel(192, 40) == AttentionKernel::short_sequence);
  CHECK(bf16->attention_kernel(300, 40) == AttentionKernel::tiled);
  CHECK(fp32->attention_kernel(300, 64) == AttentionKernel::tiled);  // too long for the short
  CHECK(bf16->attention_kernel(300, 64) == AttentionKernel::tiled_bf16);
  CHECK(mb::backend::attention_kernel_name(AttentionKernel::tiled_bf16) == "tiled bf16");
}

TEST_CASE(
    "a generation step's product: the few-rows kernel for one or two rows, the GEMM from three") {
  // The rule in kernel_ops.inc (matmul_step_forward, fp32): read off the bits, which the two
  // kernels round differently at this K.
  auto cpu = mb::backend::make_backend(Device::cpu);
  const int K = 301, N = 37;
  std::vector<float> inp(3 * K), w(static_cast<std::size_t>(N) * K), bias(N);
  for (std::size_t i = 0; i < inp.size(); ++i) inp[i] = std::sin(0.7f * static_cast<float>(i));
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = std::cos(0.3f * static_cast<float>(i));
  for (int j = 0; j < N; ++j) bias[j] = 0.01f * static_cast<float>(j);
  for (int M : {1, 2, 3}) {
    INFO("M " << M);
    std::vector<float> step(static_cast<std::size_t>(M) * N), few(step.size()), gemm(step.size());
    cpu->matmul_step_forward(step.data(), inp.data(), w.data(), bias.data(), M, K, N);
    mb::kernels::cpu::matmul_few_rows_forward(few.data(), inp.data(), w.data(), bias.data(), M, K,
                                              N);
    mb::kernels::cpu::matmul_forward(gemm.data(), inp.data(), w.data(), bias.data(), M, K, N);
    REQUIRE(few != gemm);  // the check below tells the two apart
    CHECK(step == (M <= 2 ? few : gemm));
  }
  // Whole windows always take the GEMM, whatever their number of rows.
  std::vector<float> window(N), gemm(N);
  cpu->matmul_forward(window.data(), inp.data(), w.data(), bias.data(), 1, K, N);
  mb::kernels::cpu::matmul_forward(gemm.data(), inp.data(), w.data(), bias.data(), 1, K, N);
  CHECK(window == gemm);
}

TEST_CASE("copy_rows copies rows between pitches and touches nothing else") {
  auto be = mb::backend::make_backend(Device::cpu);
  std::vector<float> src(12), dst(15, -1.0f);
  for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>(i);
  // Rows of 2 floats, 4 apart in src and 5 apart in dst, starting one float in.
  be->copy_rows(dst.data() + 1, 5 * sizeof(float), src.data() + 1, 4 * sizeof(float),
                2 * sizeof(float), 3);
  const std::vector<float> want{-1, 1, 2, -1, -1, -1, 5, 6, -1, -1, -1, 9, 10, -1, -1};
  CHECK(dst == want);
  be->copy_rows(dst.data(), 5 * sizeof(float), src.data(), 4 * sizeof(float), 0, 3);  // nothing
  CHECK(dst == want);
  // Rows that would overlap: refused, naming the sizes, before anything is written.
  try {
    be->copy_rows(dst.data(), sizeof(float), src.data(), 4 * sizeof(float), 2 * sizeof(float), 3);
    FAIL_CHECK("overlapping rows were not refused");
  } catch (const std::invalid_argument& e) {
    CHECK(contains(e.what(), "copy_rows"));
    CHECK(contains(e.what(), "dst 4"));
  }
  CHECK(dst == want);
  be->copy_rows(dst.data(), 0, src.data(), 0, 2 * sizeof(float), 1);  // one row: any pitch
  CHECK(dst[0] == 0.0f);
  CHECK(dst[1] == 1.0f);
}

// Both backends share this choice (kernel_ops.inc); on CUDA bf16 it is the tensor-core kernel.
TEST_CASE("in bf16 the backends take the bf16 attention for the heads it takes, fp32 otherwise") {
  auto run = [](mb::backend::Precision precision, int d, bool backward) {
    auto be = mb::backend::make_backend(Device::cpu, precision);
    const int B = 1, T = 70, H = 2;  // past the short attention's range in bf16
    const std::size_t n = static_cast<std::size_t>(B) * T * H * d;
    std::vector<float> qkv(3 * n), out(n), lse(static_cast<std::size_t>(B) * H * T), dqkv(3 * n);
    for (std::size_t i = 0; i < qkv.size(); ++i)
      qkv[i] = std::sin(0.37f * static_cast<float>(i)) * 2.0f;
    be->causal_attention_forward(out.data(), lse.data(), qkv.data(), B, T, H, d);
    if (!backward) return out;
    std::vector<float> dout(n);
    for (std::size_t i = 0; i < n; ++i) dout[i] = std::cos(0.11f * static_cast<float>(i));
    be->causal_attention_backward(dqkv.data(), dout.data(), out.data(), lse.data(), qkv.data(), B,
                                  T, H, d);
    return dqkv;
  };
  using mb::backend::Precision;
  for (bool backward : {false, true}) {
    CAPTURE(backward);
    CHECK(run(Precision::bf16, 16, backward) != run(Precision::fp32, 16, backward));
    CHECK(run(Precision::bf16, 8, backward) == run(Precision::fp32, 8, backward));
  }
}

TEST_CASE("the GPU peak table matches CUDA device names, most specific first") {
  using mb::backend::device_peaks;
  CHECK(device_peaks("NVIDIA H100 80GB HBM3").name == "H100 SXM");
  CHECK(device_peaks("NVIDIA H100 80GB HBM3").bf16 == doctest::Approx(989.4e12));
  CHECK(device_peaks("NVIDIA H100 PCIe").name == "H100 PCIe");
  CHECK(device_peaks("NVIDIA H100 NVL").name == "H100 NVL");
  CHECK(device_peaks("NVIDIA H200").name == "H200 SXM");
  CHECK(device_peaks("NVIDIA A100-SXM4-80GB").fp32 == doctest::Approx(19.5e12));
  // Unknown devices get no figure at all, so no MFU is made up for them.
  CHECK(device_peaks("NVIDIA GeForce RTX 3090").bf16 == 0.0);
  CHECK(device_peaks("NVIDIA GeForce RTX 3090").name.empty());
  for (const auto& p : mb::backend::known_device_peaks()) CHECK(p.bf16 > p.fp32);
}

namespace {

mb::model::ModelConfig small_transformer() {
  mb::model::ModelConfig c;
  c.kind = mb::model::ModelKind::transformer;
  c.context = 64;
  c.patch_size = 1;
  c.global = {32, 2, 4};
  c.ffn_multiplier = 4;
  return c;
}

}  // namespace

TEST_CASE("the memory plan is the model's own allocation, counted by hand") {
  const mb::model::ModelConfig c = small_transformer();
  const int B = 2;
  // Rows N = B·T = 128 make every buffer a multiple of 256 bytes, so no padding enters the count.
  const std::size_t N = 128, C = 32, H = 128, heads = 4, L = 2;
  // Per layer: input, qkv (3C), attention out, mid = 6C (the norms' outputs are recomputed in
  // the backward pass); the activation's output, H (with ReLU, the default, no pre-activation
  // is kept: the backward pass reads the output's sign); the two norms' mean and rstd = 4; the
  // attention's log-sum-exp per head.
  REQUIRE(c.activation == mb::model::Activation::relu);
  const std::size_t per_layer = N * (6 * C + H + 4 + heads);
  // The stack's final input and norm statistics, and its scratch: C, C, 3C, H, H.
  const std::size_t stack_rest = N * (C + 2) + N * (5 * C + 2 * H);
  // The model: input ids, targets (int32), per-position losses, then in/out/dout/din (D each).
  const std::size_t model_rest = N * 3 + N * 4 * C;
  const std::size_t expected = 4 * (L * per_layer + stack_rest + model_rest);

  const auto real = mb::model::make_model(c, B);
  CHECK(real->memory().activations == expected);
  CHECK(real->activation_floats() * 4 == expected);
  const auto cpu_plan = mb::model::make_model_plan(c, B, Device::cpu, Precision::fp32);
  CHECK(cpu_plan->memory().activations == expected);
  CHECK(cpu_plan->backend() == nullptr);
  const auto cuda_plan = mb::model::make_model_plan(c, B, Device::cuda, Precision::fp32);
  CHECK(cuda_plan->memory().activations == expected);
  CHECK(cuda_plan->memory().parameters == real->parameters().buffer_size() * 4);
  CHECK(cuda_plan->memory().gradients == real->parameters().buffer_size() * 4);
  // A plan allocates nothing: even the paper's PG-19 shape costs no memory to describe.
  mb::model::ModelConfig big = c;
  big.context = 8192;
  big.global = {2048, 24, 16};
  const auto big_plan = mb::model::make_model_plan(big, 8, Device::cuda, Precision::bf16);
  CHECK(big_plan->memory().activations > (std::size_t{1} << 30));
  CHECK(big_plan->parameters().values().empty());
}

TEST_CASE("a config whose attention heads are too wide for CUDA is refused when planned for it") {
  mb::model::ModelConfig c = small_transformer();
  c.global = {512, 1, 2};  // heads of 256
  const std::string msg =
      error_of([&] { (void)mb::model::make_model_plan(c, 1, Device::cuda, Precision::bf16); });
  CHECK(contains(msg, "model.global.heads"));
  CHECK(contains(msg, "256"));
  CHECK_NOTHROW((void)mb::model::make_model_plan(c, 1, Device::cpu, Precision::fp32));
}

TEST_CASE("bf16 precision rounds the products' operands: close to fp32, not equal") {
  mb::model::ModelConfig c = small_transformer();
  const int B = 1;
  auto fp32 = mb::model::make_model(
      c, B, mb::backend::make_backend(Device::cpu, mb::backend::Precision::fp32));
  auto bf16 = mb::model::make_model(
      c, B, mb::backend::make_backend(Device::cpu, mb::backend::Precision::bf16));
  CHECK(bf16->backend()->precision() == mb::backend::Precision::bf16);
  CHECK(mb::backend::make_backend(Device::cpu)->precision() == mb::backend::Precision::fp32);
  CHECK(mb::backend::default_precision(Device::cuda) == mb::backend::Precision::bf16);
  fp32->parameters().initialize(0.05f, 3);
  bf16->parameters().initialize(0.05f, 3);
  std::vector<std::int32_t> ids(static_cast<std::size_t>(c.context));
  for (std::size_t i = 0; i < ids.size(); ++i)
    ids[i] = static_cast<std::int32_t>((i * 37 + 11) % 256);
  const double a = fp32->forward(ids.data(), B, false, 0).loss;
  const double b = bf16->forward(ids.data(), B, false, 0).loss;
  CHECK(a != b);                                // the rounding took effect
  CHECK(std::abs(a - b) < 1e-2 * std::abs(a));  // and only as much as bf16's 8 bits allow
  const std::string msg =
      error_of([] { (void)mb::backend::parse_precision("fp16", "--precision"); });
  CHECK(contains(msg, "--precision"));
}

// Whether view().values_bf16 holds exactly the bf16 patterns of the model's fp32 values.
bool copy_in_step(const mb::model::Model& m) {
  const std::size_t n = m.parameters().buffer_size();
  const float* values = m.view().values;
  const std::uint16_t* copy = m.view().values_bf16;
  for (std::size_t i = 0; i < n; ++i)
    if (copy[i] != mb::kernels::cpu::bf16_bits(values[i])) return false;
  return true;
}

TEST_CASE("bf16: the weights' bf16 copy is made by upload_parameters and kept by AdamW") {
  mb::model::ModelConfig c = small_transformer();
  const int B = 2;
  auto m = mb::model::make_model(c, B, mb::backend::make_backend(Device::cpu, Precision::bf16));
  auto fp32 = mb::model::make_model(c, B, mb::backend::make_backend(Device::cpu, Precision::fp32));
  CHECK(m->memory().bf16_weights == m->parameters().buffer_size() * 2);
  CHECK(fp32->memory().bf16_weights == 0);
  m->parameters().initialize(0.05f, 5);
  std::vector<std::int32_t> ids(static_cast<std::size_t>(B) * c.context);
  for (std::size_t i = 0; i < ids.size(); ++i)
    ids[i] = static_cast<std::int32_t>((i * 53 + 7) % 256);

  // Before the first upload there is no copy and the products round the fp32 weights; after
  // it they read the copy, with the very same result.
  CHECK(m->view().values_bf16 == nullptr);
  const double rounded = m->forward(ids.data(), B, false, 0).loss;
  m->upload_parameters();
  REQUIRE(m->view().values_bf16 != nullptr);
  CHECK(copy_in_step(*m));
  CHECK(m->forward(ids.data(), B, false, 0).loss == rounded);

  // A training step moves the weights, and AdamW moves the copy with them.
  mb::model::AdamW opt(*m);
  const std::vector<float> before = m->parameters().values();
  m->zero_gradients();
  const auto count = m->forward(ids.data(), B, true, 1).count;
  m->backward(1.0f / static_cast<float>(count));
  opt.step(*m, mb::model::OptimizerConfig{}, 1e-2, 1);
  CHECK(m->parameters().values() != before);
  CHECK(copy_in_step(*m));
  // and the next forward equals that of a model given the new weights afresh.
  auto fresh = mb::model::make_model(c, B, mb::backend::make_backend(Device::cpu, Precision::bf16));
  fresh->parameters().values() = m->parameters().values();
  CHECK(fresh->forward(ids.data(), B, false, 0).loss == m->forward(ids.data(), B, false, 0).loss);

  // fp32 keeps no copy.
  fp32->upload_parameters();
  CHECK(fp32->view().values_bf16 == nullptr);
}

TEST_CASE("the training memory plan adds the optimiser and the workspace to the model's plan") {
  mb::model::Config config;
  config.model = small_transformer();
  config.train.batch_size = 2;
  const auto model_plan =
      mb::model::make_model_plan(config.model, 2, Device::cuda, Precision::bf16);
  const auto cuda = mb::train::plan_training_memory(config, Device::cuda, Precision::bf16);
  const auto cpu = mb::train::plan_training_memory(config, Device::cpu, Precision::fp32);
  CHECK(cuda.parameter_count == model_plan->parameters().count());
  CHECK(cuda.activations == model_plan->memory().activations);
  CHECK(cuda.optimizer == 2 * cuda.parameters);
  CHECK(cuda.workspace == mb::backend::kCudaMatmulWorkspaceBytes);
  CHECK(cpu.workspace == 0);
  CHECK(cuda.bf16_weights * 2 == cuda.parameters);  // the bf16 copy of every parameter
  CHECK(cpu.bf16_weights == 0);                     // fp32 keeps none
  CHECK(cuda.total() == cuda.parameters + cuda.gradients + cuda.optimizer + cuda.bf16_weights +
                            cuda.activations + cuda.workspace);
  // bf16 saves three activations per layer as bf16 only (FC_qkv's, the attention's and the
  // ReLU's outputs; no pre-activation is kept): (4C + H) · 2 bytes less per row and layer, for
  // one fp32 buffer of 3C per row (N = 128 rows, C = 32, H = 128, 2 layers: all multiples of
  // 256 bytes).
  const std::size_t saved = 2 * 128 * (4 * 32 + 128) * 2 - 128 * 3 * 32 * 4;
  CHECK(cpu.activations - cuda.activations == saved);
  CHECK(cuda.total() + saved - cpu.total() ==
        mb::backend::kCudaMatmulWorkspaceBytes + cuda.bf16_weights);
  config.train.batch_size = 4;  // activations scale with the batch, nothing else does
  const auto four = mb::train::plan_training_memory(config, Device::cuda, Precision::bf16);
  CHECK(four.activations == 2 * cuda.activations);
  CHECK(four.parameters == cuda.parameters);
}
