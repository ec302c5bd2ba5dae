// megabyte train: parse, load the config and the dataset, call lib/train, report.
#include <cstdio>
#include <iostream>
#include <optional>

#include "backend/backend.hpp"
#include "command.hpp"
#include "device_options.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "data/dataset.hpp"
#include "dist/job.hpp"
#include "model/config.hpp"
#include "train/trainer.hpp"

namespace mb::tools {

namespace {

struct TrainArgs {
  std::string config, dataset, run_dir;
  std::vector<std::string> overrides;
  bool resume = false;
  bool print_config = false;
  int threads = 0;
  std::int64_t max_steps = 0;
  DeviceOptions devices;
};

int run_train(const TrainArgs& a) {
  // In a job of several processes every rank reads the config and the dataset; a failure on
  // any of them is reported once, by rank 0 (dist::Job::together).
  dist::Job& job = dist::Job::get();
  std::optional<model::Config> loaded;
  job.together([&] { loaded = model::load_config(a.config, a.overrides); });
  const model::Config& config = *loaded;
  if (a.print_config) {
    if (job.is_root()) std::cout << model::config_to_yaml(config);
    return kExitOk;
  }
  backend::set_cpu_threads(a.threads);
  std::optional<data::Dataset> opened;
  job.together([&] { opened.emplace(data::Dataset::open(a.dataset)); });
  const data::Dataset& dataset = *opened;

  train::TrainOptions options;
  options.run_dir = a.run_dir;
  options.resume = a.resume;
  options.max_steps = a.max_steps;
  options.device = a.devices.resolved_device();
  options.precision = a.devices.resolved_precision();
  options.interrupted = [] { return g_interrupted.load(); };
  const train::TrainResult r = train::train(config, dataset, options);
  if (!dist::Job::get().is_root())
    return r.interrupted ? kExitInterrupted : kExitOk;  // rank 0 reports

  if (r.step == r.start_step && !r.interrupted) {
    std::printf("step %lld: the run is already complete (train.steps = %lld)\n",
                static_cast<long long>(r.step), static_cast<long long>(config.train.steps));
    return kExitOk;
  }
  if (r.interrupted) {
    log_info("interrupted at step " + std::to_string(r.step) + "; checkpoint " +
             r.last_checkpoint.string() + " (continue with --resume)");
    return kExitInterrupted;
  }
  char line[256];
  if (r.last_val_bpb >= 0)
    std::snprintf(line, sizeof line, "step %lld: train loss %.4f (%.4f bpb), validation %.4f bpb\n",
                  static_cast<long long>(r.step), r.last_loss, r.last_loss / 0.69314718055994530942,
                  r.last_val_bpb);
  else
    std::snprintf(line, sizeof line, "step %lld: train loss %.4f (%.4f bpb)\n",
                  static_cast<long long>(r.step), r.last_loss,
                  r.last_loss / 0.69314718055994530942);
  std::fputs(line, stdout);
  if (!r.last_checkpoint.empty()) log_info("checkpoint: " + r.last_checkpoint.string());
  return kExitOk;
}

}  // namespace

RunFunction add_train_command(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* sub =
      app.add_subcommand("train", "Train a model from a YAML config on a prepared dataset");
  sub->footer(
      "\nExamples:\n"
      "  megabyte train configs/tiny-cpu.yaml data/dev/kjv.dataset -o runs/kjv\n"
      "  megabyte train configs/tiny-cpu.yaml data/dev/kjv.dataset -o runs/kjv --resume\n"
      "  megabyte train configs/bench-cpu.yaml --set model.patch_size=4 --print-config\n"
      "\nRUNDIR receives config.yaml, metrics.jsonl, trained-on.yaml (the dataset) and\n"
      "checkpoints/step-N/. Ctrl-C writes a checkpoint and stops; --resume continues exactly\n"
      "where it stopped, with the same config and dataset.\n"
      "See megabyte-train(1), megabyte-config(5), megabyte-checkpoint(5).");
  sub->add_option("CONFIG", a->config, "The YAML config (see megabyte-config(5))")->required();
  CLI::Option* dataset =
      sub->add_option("DATASET", a->dataset, "A dataset directory written by 'megabyte prepare'");
  CLI::Option* output =
      sub->add_option("-o,--output", a->run_dir,
                      "The run directory (created; must be new or empty unless --resume)");
  sub->add_option("--set", a->overrides,
                  "Override a config key, e.g. --set train.steps=200 (repeatable)")
      ->take_all()
      ->allow_extra_args(false);
  sub->add_flag("--resume", a->resume,
                "Continue the run in RUNDIR from its last checkpoint (or start it, if it has not "
                "started: a restarted job script runs the same command)");
  sub->add_flag("--print-config", a->print_config, "Print the resolved config as YAML and exit");
  sub->add_option("-j,--threads", a->threads, "CPU threads (default: all)")
      ->check(CLI::Range(1, 4096));
  add_device_options(sub, a->devices);
  sub->add_option("--max-steps", a->max_steps,
                  "Stop after this many steps of this invocation, with a checkpoint (resume later)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 40));
  // DATASET and -o are needed unless the config is only printed: a usage error (status 2).
  sub->callback([a, dataset, output] {
    if (!a->print_config && (dataset->count() == 0 || output->count() == 0))
      throw CLI::RequiredError("DATASET and -o RUNDIR (or --print-config)");
  });
  return [a] { return run_train(*a); };
}

}  // namespace mb::tools
