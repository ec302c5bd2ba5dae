// megabyte bench: measure this machine: training throughput of a config (--config), beside
// the machine's sgemm rate, its forward-only (--eval) and generation (--generate) throughput,
// and the dataset reader under the training sampler's access pattern (--dataset).
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>

#include "backend/backend.hpp"
#include "command.hpp"
#include "device_options.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/progress.hpp"
#include "core/thread_pool.hpp"
#include "data/dataset.hpp"
#include "data/read_benchmark.hpp"
#include "model/checkpoint.hpp"
#include "model/config.hpp"
#include "train/eval_benchmark.hpp"
#include "train/generation_benchmark.hpp"
#include "dist/job.hpp"
#include "train/memory_plan.hpp"
#include "train/step_share.hpp"
#include "train/train_benchmark.hpp"

namespace mb::tools {

namespace {

struct BenchArgs {
  std::string config;
  std::string checkpoint;
  std::vector<std::string> overrides;
  int min_steps = 3;
  bool generate = false;
  bool eval = false;
  std::string dataset;
  std::string split = "train";
  std::uint64_t window = 8192;
  double seconds = 3.0;
  unsigned threads = 0;
  std::uint64_t cache = 512ull << 20;
  bool json = false;
  bool memory = false;
  std::uint64_t fit = 0;     // --memory --fit: a device's bytes
  int ranks = 1;             // --memory: the plan of one of this many processes sharing the step
  int batch = 1;             // --generate: sequences side by side; --eval: windows per pass
  bool batch_given = false;  // --eval without --batch takes the config's train.batch_size
  DeviceOptions devices;
};

backend::Device chosen_device(const BenchArgs& a) { return a.devices.resolved_device(); }

// --memory: what the config needs on the device (train/memory_plan.hpp).
int run_memory_plan(const BenchArgs& a) {
  const model::Config config = model::load_config(a.config, a.overrides);
  const backend::Device device = chosen_device(a);
  const backend::Precision precision = a.devices.resolved_precision();
  const train::StepShare share = train::share_step(
      config.train.batch_size, config.train.grad_accumulation, a.ranks, 0);  // N must divide it
  const train::TrainingMemory m = train::plan_training_memory(config, device, precision, a.ranks);
  const int batch = config.train.batch_size;
  const std::string dev(backend::device_name(device));
  const std::string recompute(model::recompute_name(config.train.recompute));
  // With --fit: whether the plan fits that many bytes and, where not, a way to take the same
  // step that does.
  std::optional<train::FittingPlan> fitting;
  if (a.fit && m.total() > a.fit)
    fitting = train::fit_training_memory(config, device, precision, a.fit, a.ranks);
  auto fit_advice = [&] {
    if (!fitting) return std::string();
    return "--set train.batch_size=" + std::to_string(fitting->batch_size) +
           " --set train.grad_accumulation=" + std::to_string(fitting->grad_accumulation) +
           " --set train.recompute=" + std::string(model::recompute_name(fitting->recompute)) +
           (fitting->local_chunk
                ? " --set train.local_chunk=" + std::to_string(fitting->local_chunk)
                : std::string());
  };
  if (a.json) {
    nlohmann::json j{{"benchmark", "memory"},
                     {"config", a.config},
                     {"device", dev},
                     {"precision", std::string(backend::precision_name(precision))},
                     {"batch_size", batch},
                     {"ranks", a.ranks},
                     {"rank_windows", std::min(batch, share.windows)},
                     {"context", config.model.context},
                     {"parameters", m.parameter_count},
                     {"parameter_bytes", m.parameters},
                     {"gradient_bytes", m.gradients},
                     {"optimizer_bytes", m.optimizer},
                     {"bf16_weight_bytes", m.bf16_weights},
                     {"activation_bytes", m.activations},
                     {"workspace_bytes", m.workspace},
                     {"total_bytes", m.total()},
                     {"recompute", recompute},
                     {"local_chunk", config.train.local_chunk}};
    if (a.fit) {
      j["fit_bytes"] = a.fit;
      j["fits"] = m.total() <= a.fit;
      if (m.total() > a.fit)
        j["fitting"] =
            fitting ? nlohmann::json{{"batch_size", fitting->batch_size},
                                     {"grad_accumulation", fitting->grad_accumulation},
                                     {"recompute",
                                      std::string(model::recompute_name(fitting->recompute))},
                                     {"local_chunk", fitting->local_chunk},
                                     {"total_bytes", fitting->memory.total()}}
                    : nlohmann::json(nullptr);
    }
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  auto row = [](const char* what, std::size_t bytes, const std::string& note) {
    std::printf("  %-20s %10s%s%s\n", what, human_bytes(static_cast<double>(bytes)).c_str(),
                note.empty() ? "" : "  ", note.c_str());
  };
  std::printf(
      "memory on %s, %s matrix products, for %s (batch %d x T %d, %.2fM parameters, "
      "recompute %s%s):\n",
      dev.c_str(), std::string(backend::precision_name(precision)).c_str(), a.config.c_str(), batch,
      config.model.context, static_cast<double>(m.parameter_count) / 1e6, recompute.c_str(),
      config.train.local_chunk > 0
          ? (", local chunks of " + std::to_string(config.train.local_chunk) + " patches").c_str()
          : "");
  if (a.ranks > 1)
    std::printf(
        "  one of %d ranks: %d windows at a time, %s\n", a.ranks, std::min(batch, share.windows),
        (config.train.zero ? "1/" + std::to_string(a.ranks) + " of the AdamW moments (train.zero 1)"
                           : std::string("all of the AdamW moments (train.zero 0)"))
            .c_str());
  row("parameters", m.parameters, "fp32");
  row("gradients", m.gradients, "fp32");
  row("AdamW moments", m.optimizer,
      config.train.zero && a.ranks > 1 ? "fp32 m and v, this rank's part" : "fp32 m and v");
  if (m.bf16_weights)
    row("bf16 weight copy", m.bf16_weights, "what the products read; AdamW writes it");
  row("activations", m.activations, "what forward keeps for backward, scratch, ids");
  if (m.workspace) row("cuBLASLt workspace", m.workspace, "");
  row("total", m.total(),
      device == backend::Device::cuda ? "plus the CUDA context and the kernels' per-op temporaries"
                                      : "plus the kernels' per-op temporaries");
  if (a.fit) {
    const std::string budget = human_bytes(static_cast<double>(a.fit));
    if (m.total() <= a.fit)
      std::printf("fits %s\n", budget.c_str());
    else if (fitting)
      std::printf("does not fit %s; the same step (%d windows) fits as %s (total %s)\n",
                  budget.c_str(), batch * config.train.grad_accumulation, fit_advice().c_str(),
                  human_bytes(static_cast<double>(fitting->memory.total())).c_str());
    else
      std::printf(
          "does not fit %s, not even one window at a time with train.recompute all and local "
          "chunks of 64 patches: "
          "lower model.context or the model's widths\n",
          budget.c_str());
  }
  return kExitOk;
}

std::string fixed1(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

int run_training_bench(const BenchArgs& a) {
  dist::Job& job = dist::Job::get();  // under mpirun: the ranks share each step
  std::optional<model::Config> loaded;
  job.together([&] { loaded = model::load_config(a.config, a.overrides); });
  const model::Config& config = *loaded;
  backend::set_cpu_threads(static_cast<int>(a.threads));
  const int threads = backend::cpu_threads();
  const model::ModelConfig& m = config.model;
  const backend::Device device = chosen_device(a);
  const bool gpu = device == backend::Device::cuda;
  backend::require_device(device);
  log_info(
      "bench: training " + a.config + " (" + std::string(model::model_kind_name(m.kind)) + ", T " +
      std::to_string(m.context) + ", batch " + std::to_string(config.train.batch_size) + "x" +
      std::to_string(config.train.grad_accumulation) + ") on " +
      (gpu ? std::string("cuda") : human_count(threads, "thread", "threads")) + " for at least " +
      std::to_string(a.min_steps) + " steps and " + fixed1(a.seconds) + " s");
  const backend::Precision precision = a.devices.resolved_precision();
  const train::TrainBenchmark t =
      train::benchmark_training(config, a.seconds, a.min_steps, device, precision);
  const int sgemm_n = gpu ? 4096 : 1024;
  const double sgemm = train::measure_sgemm_gflops(device, precision, sgemm_n, 1.0);
  if (!job.is_root()) return kExitOk;  // rank 0 reports the job's figures
  const std::string gemm = precision == backend::Precision::bf16 ? "bf16 gemm" : "sgemm";
  const double state_bytes =
      4.0 * sizeof(float) * static_cast<double>(t.parameters);  // weights, grads, m, v
  // Model FLOP utilisation: achieved model FLOP/s over the device's peak (device_peaks.cpp).
  const double mfu_bf16 = t.peak_bf16_flops > 0 ? t.gflops() * 1e9 / t.peak_bf16_flops : 0.0;
  const double mfu_fp32 = t.peak_fp32_flops > 0 ? t.gflops() * 1e9 / t.peak_fp32_flops : 0.0;
  if (a.json) {
    nlohmann::json j{{"benchmark", "train"},
                     {"config", a.config},
                     {"threads", threads},
                     {"device", std::string(backend::device_name(device))},
                     {"device_name", t.device},
                     {"peak_device_bytes", t.peak_device_bytes},
                     {"peak_bf16_flops", t.peak_bf16_flops},
                     {"peak_fp32_flops", t.peak_fp32_flops},
                     {"mfu_bf16", mfu_bf16},
                     {"mfu_fp32", mfu_fp32},
                     {"sgemm_n", sgemm_n},
                     {"precision", std::string(backend::precision_name(precision))},
                     {"steps", t.steps},
                     {"seconds", t.seconds},
                     {"step_seconds", t.step_seconds()},
                     {"bytes_per_second", t.bytes_per_second()},
                     {"gflops", t.gflops()},
                     {"flops_per_step", t.flops_per_step},
                     {"sgemm_gflops", sgemm},
                     {"fraction_of_sgemm", t.gflops() / sgemm},
                     {"parameters", t.parameters},
                     {"activation_bytes", t.activation_bytes},
                     {"parameter_state_bytes", state_bytes},
                     {"peak_rss_bytes", t.peak_rss_bytes},
                     {"ranks", t.ranks},
                     {"collectives", t.collectives},
                     {"collective_seconds_per_step", t.collective_seconds_per_step},
                     {"collective_bytes_per_step", t.collective_bytes_per_step},
                     {"parallel_efficiency", t.parallel_efficiency()}};
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::printf("train:  %.0f bytes/s, %.3f s/step, %.1f GFLOP/s (%.2f GFLOP/step, %d steps)\n",
              t.bytes_per_second(), t.step_seconds(), t.gflops(), t.flops_per_step / 1e9, t.steps);
  if (t.ranks > 1)
    std::printf(
        "job:    %d ranks (%s): each step's %s %.1f ms, %s sent per rank (%.1f%% of the step); "
        "efficiency %.1f%% (the step's time outside them)\n",
        t.ranks, t.collectives.c_str(),
        config.train.zero ? "gradient sum and parameter gather" : "gradient sum",
        1e3 * t.collective_seconds_per_step, human_bytes(t.collective_bytes_per_step).c_str(),
        100.0 * t.collective_seconds_per_step / t.step_seconds(), 100.0 * t.parallel_efficiency());
  std::printf(
      "sgemm:  %.1f GFLOP/s (%dx%dx%d %s, the model's matmul kernel%s): training at %.0f%%\n",
      sgemm, sgemm_n, sgemm_n, sgemm_n, gemm.c_str(), t.ranks > 1 ? ", one rank" : "",
      100.0 * t.gflops() / sgemm);
  if (gpu) {
    if (t.peak_bf16_flops > 0)
      std::printf(
          "device: %s: MFU %.1f%% of the bf16 peak (%.0f TFLOP/s), %.1f%% of the fp32 peak (%.1f "
          "TFLOP/s)\n",
          t.device.c_str(), 100.0 * mfu_bf16, t.peak_bf16_flops / 1e12, 100.0 * mfu_fp32,
          t.peak_fp32_flops / 1e12);
    else
      std::printf("device: %s: its peak rate is not in megabyte's table, so no MFU\n",
                  t.device.c_str());
    std::printf(
        "memory: peak %s on the device; activations %s, parameters+gradients+AdamW %s (%.2fM "
        "parameters)\n",
        human_bytes(static_cast<double>(t.peak_device_bytes)).c_str(),
        human_bytes(static_cast<double>(t.activation_bytes)).c_str(),
        human_bytes(state_bytes).c_str(), static_cast<double>(t.parameters) / 1e6);
  } else {
    std::printf(
        "memory: peak %s resident; activations %s, parameters+gradients+AdamW %s (%.2fM "
        "parameters)\n",
        human_bytes(static_cast<double>(t.peak_rss_bytes)).c_str(),
        human_bytes(static_cast<double>(t.activation_bytes)).c_str(),
        human_bytes(state_bytes).c_str(), static_cast<double>(t.parameters) / 1e6);
  }
  return kExitOk;
}

int run_generation_bench(const BenchArgs& a) {
  std::filesystem::path checkpoint;
  model::Config config;
  if (!a.checkpoint.empty()) {
    checkpoint = model::resolve_checkpoint(a.checkpoint);
    config = model::read_checkpoint_info(checkpoint, false).config;  // load_model verifies
  } else {
    config = model::load_config(a.config, a.overrides);
  }
  const std::string what = checkpoint.empty() ? a.config + ", random weights" : checkpoint.string();
  const std::shared_ptr<backend::Backend> device =
      a.devices.make_backend();  // fails before any output
  backend::set_cpu_threads(static_cast<int>(a.threads));
  const int threads = backend::cpu_threads();
  log_info("bench: generating with " + what + " (" +
           std::string(model::model_kind_name(config.model.kind)) + ", T " +
           std::to_string(config.model.context) + ") on " +
           (device->device() == backend::Device::cuda ? device->description()
                                                      : human_count(threads, "thread", "threads")) +
           ", about " + fixed1(a.seconds) + " s each way");
  const train::GenerationBenchmark g =
      train::benchmark_generation(device, config, a.seconds, a.min_steps, checkpoint, a.batch);
  const double speedup = g.cached_bytes_per_second() / g.reforward_bytes_per_second();
  if (a.json) {
    nlohmann::json j{{"benchmark", "generate"},
                     {"model", what},
                     {"threads", threads},
                     {"context", config.model.context},
                     {"batch", g.batch},
                     {"cached_bytes", g.cached_bytes},
                     {"cached_seconds", g.cached_seconds},
                     {"cached_bytes_per_second", g.cached_bytes_per_second()},
                     {"reforward_bytes", g.reforward_bytes},
                     {"reforward_seconds", g.reforward_seconds},
                     {"reforward_bytes_per_second", g.reforward_bytes_per_second()},
                     {"speedup", speedup},
                     {"generator_bytes", g.generator_bytes}};
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  if (g.batch > 1)
    std::printf(
        "generate (cache):      %.1f bytes/s (%lld bytes in %.2f s, %d sequences side by side)\n",
        g.cached_bytes_per_second(), static_cast<long long>(g.cached_bytes), g.cached_seconds,
        g.batch);
  else
    std::printf("generate (cache):      %.1f bytes/s (%lld bytes in %.2f s)\n",
                g.cached_bytes_per_second(), static_cast<long long>(g.cached_bytes),
                g.cached_seconds);
  std::printf(
      "generate (re-forward): %.2f bytes/s (%lld bytes in %.2f s): the cache is %.0fx faster\n",
      g.reforward_bytes_per_second(), static_cast<long long>(g.reforward_bytes),
      g.reforward_seconds, speedup);
  std::printf(
      "generate memory:       %s of KV caches and step buffers for %d %s, besides the weights\n",
      human_bytes(static_cast<double>(g.generator_bytes)).c_str(), g.batch,
      g.batch == 1 ? "sequence" : "sequences");
  return kExitOk;
}

int run_eval_bench(const BenchArgs& a) {
  const model::Config config = model::load_config(a.config, a.overrides);
  const int batch = a.batch_given ? a.batch : config.train.batch_size;
  const std::shared_ptr<backend::Backend> device =
      a.devices.make_backend();  // fails before any output
  backend::set_cpu_threads(static_cast<int>(a.threads));
  const int threads = backend::cpu_threads();
  const bool gpu = device->device() == backend::Device::cuda;
  const std::string precision(backend::precision_name(device->precision()));
  log_info("bench: evaluating " + a.config + " (" +
           std::string(model::model_kind_name(config.model.kind)) + ", T " +
           std::to_string(config.model.context) + ", batch " + std::to_string(batch) +
           ", forward only) on " +
           (gpu ? device->description() : human_count(threads, "thread", "threads")) +
           " for at least " + std::to_string(a.min_steps) + " batches and " + fixed1(a.seconds) +
           " s");
  const train::EvalBenchmark e =
      train::benchmark_eval(device, config, batch, a.seconds, a.min_steps);
  if (a.json) {
    nlohmann::json j{{"benchmark", "eval"},
                     {"config", a.config},
                     {"threads", threads},
                     {"device", std::string(backend::device_name(device->device()))},
                     {"device_name", e.device},
                     {"precision", precision},
                     {"context", config.model.context},
                     {"batch", e.batch},
                     {"batches", e.batches},
                     {"seconds", e.seconds},
                     {"batch_seconds", e.batch_seconds()},
                     {"bytes_per_second", e.bytes_per_second()},
                     {"gflops", e.gflops()},
                     {"flops_per_batch", e.flops_per_batch},
                     {"loss", e.loss},
                     {"parameters", e.parameters},
                     {"activation_bytes", e.activation_bytes},
                     {"peak_rss_bytes", e.peak_rss_bytes},
                     {"peak_device_bytes", e.peak_device_bytes}};
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::printf(
      "eval:   %.0f bytes/s, %.3f s/batch, %.1f GFLOP/s (%.2f GFLOP/batch of %d x %d bytes, %d "
      "batches)\n",
      e.bytes_per_second(), e.batch_seconds(), e.gflops(), e.flops_per_batch / 1e9, e.batch,
      config.model.context, e.batches);
  std::printf(
      "memory: peak %s %s; activations %s, parameters %s (%.2fM parameters)\n",
      human_bytes(static_cast<double>(gpu ? e.peak_device_bytes : e.peak_rss_bytes)).c_str(),
      gpu ? "on the device" : "resident",
      human_bytes(static_cast<double>(e.activation_bytes)).c_str(),
      human_bytes(4.0 * static_cast<double>(e.parameters)).c_str(),
      static_cast<double>(e.parameters) / 1e6);
  return kExitOk;
}

int run_dataset_bench(const BenchArgs& a) {
  data::DatasetOptions opt;
  opt.cache_bytes = a.cache;
  data::Dataset ds = data::Dataset::open(a.dataset, opt);
  const data::SplitReader& split = ds.split(a.split);
  const unsigned threads = a.threads == 0 ? default_thread_count() : a.threads;
  // A short warm-up fills the frame cache, so the figure is the steady state. It also
  // refuses an empty split before anything is printed.
  (void)data::benchmark_random_windows(split, a.window, std::min(1.0, a.seconds / 3), threads, 1);
  char line[256];
  std::snprintf(line, sizeof line,
                "bench: reading random %llu-byte windows from %s (%s) on %u threads for %.1f s",
                static_cast<unsigned long long>(a.window), a.dataset.c_str(), a.split.c_str(),
                threads, a.seconds);
  log_info(line);
  const auto r = data::benchmark_random_windows(split, a.window, a.seconds, threads, 2);
  const double mbps = static_cast<double>(r.bytes) / r.seconds / 1e6;
  if (a.json) {
    nlohmann::json j{{"benchmark", "dataset-read"},
                     {"dataset", a.dataset},
                     {"split", a.split},
                     {"window_bytes", a.window},
                     {"threads", r.threads},
                     {"seconds", r.seconds},
                     {"windows", r.windows},
                     {"windows_per_second", r.windows_per_second()},
                     {"megabytes_per_second", mbps}};
    std::cout << j.dump(2) << "\n";
  } else {
    std::printf("dataset read: %.0f windows/s of %llu bytes (%.0f MB/s) on %u threads, %.1f s\n",
                r.windows_per_second(), static_cast<unsigned long long>(a.window), mbps, r.threads,
                r.seconds);
  }
  return kExitOk;
}

int run_bench(const BenchArgs& a) {
  // Under mpirun only the training benchmark runs as a job (of ranks sharing each step).
  if (dist::launched_processes() > 1 && (a.config.empty() || a.memory || a.generate || a.eval))
    throw dist::AgreedError(
        "bench", "only the training benchmark (--config) runs as a job of several processes",
        "run it without mpirun or srun; --memory --ranks N gives a rank's plan");
  if (!a.checkpoint.empty()) return run_generation_bench(a);
  if (a.config.empty()) return run_dataset_bench(a);
  if (a.memory) return run_memory_plan(a);
  if (a.eval) return run_eval_bench(a);
  return a.generate ? run_generation_bench(a) : run_training_bench(a);
}

}  // namespace

RunFunction add_bench_command(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* sub =
      app.add_subcommand("bench",
                         "Measure training, eval or generation throughput, or dataset reads, on "
                         "this machine");
  sub->footer(
      "\nExamples:\n  megabyte bench --config configs/bench-cpu.yaml\n"
      "  megabyte bench --config configs/bench-cpu.yaml --set model.context=8192 --set "
      "train.batch_size=1\n"
      "  megabyte bench --config configs/bench-cpu.yaml --eval --batch 8\n"
      "  megabyte bench --config configs/bench-cpu.yaml --set model.context=8192 --generate\n"
      "  megabyte bench --config configs/paper-pg19.yaml --device cuda --memory\n"
      "  megabyte bench --checkpoint runs/kjv-tiny\n"
      "  megabyte bench --dataset data/dev/kjv.dataset --window 8192 -j 2\n\nSee "
      "megabyte-bench(1).");
  // Exactly one of these says what to measure; CLI11 reports a usage error otherwise.
  CLI::Option_group* what = sub->add_option_group("What to measure (one of)");
  CLI::Option* config_opt = what->add_option(
      "--config", a->config, "Training steps of this YAML config (on random bytes)");
  what->add_option(
      "--checkpoint", a->checkpoint,
      "Generation with this checkpoint's weights (a run or checkpoint directory): as --generate");
  what->add_option("--dataset", a->dataset, "Random-window reads from this dataset");
  what->require_option(1);
  sub->add_option("--set", a->overrides,
                  "Override a config key, e.g. --set train.batch_size=1 (repeatable)")
      ->take_all()
      ->allow_extra_args(false);
  sub->add_option(
         "--steps", a->min_steps,
         "With --config: measure at least this many steps (with --eval: forward passes; with "
         "--generate: re-forward bytes)")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  CLI::Option* generate_opt =
      sub->add_flag("--generate", a->generate,
                    "With --config: generation bytes/s with the KV cache and by re-forwarding the "
                    "window per byte")
          ->needs(config_opt);
  CLI::Option* memory_opt =
      sub->add_flag("--memory", a->memory,
                    "With --config: print the memory the config needs on the device (from the "
                    "model's allocation plan; runs nothing, needs no GPU)")
          ->needs(config_opt);
  sub->add_flag("--eval", a->eval,
                "With --config: forward-only bytes/s: the pass `megabyte eval` runs on each batch "
                "of windows (no dropout, no backward pass)")
      ->needs(config_opt)
      ->excludes(generate_opt)
      ->excludes(memory_opt);
  sub->add_option("--fit", a->fit,
                  "With --memory: whether the plan fits this many bytes (e.g. 72G for an 80 GB GPU "
                  "with room for the CUDA context), and if not, which micro-batch, accumulation "
                  "and recomputation would (K, M, G suffixes)")
      ->transform(CLI::AsSizeValue(false));
  sub->add_option("--ranks", a->ranks,
                  "With --memory: the plan of one of this many processes sharing each step "
                  "(mpirun -np; with train.zero 1 each keeps its part of the optimizer state)")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  add_device_options(sub, a->devices);
  CLI::Option* batch_opt =
      sub->add_option("--batch", a->batch,
                      "With --eval: windows per forward pass (default: the config's "
                      "train.batch_size); with --generate or --checkpoint: sequences generated "
                      "side by side in the cached run (default 1)")
          ->check(CLI::Range(1, 4096));
  sub->add_option("--split", a->split, "The split to read")->capture_default_str();
  sub->add_option("--window", a->window, "Window length T in bytes")
      ->check(CLI::Range(1, 1 << 30))
      ->capture_default_str();
  sub->add_option("--seconds", a->seconds, "How long to measure (at least)")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  sub->add_option("-j,--threads", a->threads, "Threads (default: all hardware threads)");
  sub->add_option("--cache", a->cache, "Decompressed-frame cache size (K, M, G suffixes)")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  sub->add_flag("--json", a->json, "Print as JSON");
  return [a, batch_opt] {
    // Said, not ignored: a training benchmark takes its batch from the config.
    a->batch_given = batch_opt->count() > 0;
    if (a->batch_given && !a->generate && !a->eval && a->checkpoint.empty())
      throw Error("--batch", "is for eval and generation (--eval, --generate or --checkpoint)",
                  "the training benchmark's batch is the config's: --set train.batch_size=N");
    return run_bench(*a);
  };
}

}  // namespace mb::tools
