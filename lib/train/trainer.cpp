#include "train/trainer.hpp"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <vector>

#include "core/error.hpp"
#include "core/log.hpp"
#include "core/progress.hpp"
#include "data/encoders/registry.hpp"
#include "model/checkpoint.hpp"
#include "model/load_model.hpp"
#include "model/model.hpp"
#include "model/optimizer.hpp"
#include "train/evaluate.hpp"
#include "train/memory_plan.hpp"
#include "train/train_step.hpp"
#include "train/metrics_log.hpp"
#include "train/run_dataset.hpp"
#include "train/run_directory.hpp"
#include "train/window_sampler.hpp"

namespace mb::train {

namespace fs = std::filesystem;
using model::Config;

namespace {

constexpr double kLn2 = 0.69314718055994530942;

// A status line on stderr: redrawn in place on a terminal, one log line per call elsewhere.
class StatusLine {
 public:
  StatusLine() : tty_(::isatty(STDERR_FILENO) && verbosity() != Verbosity::quiet) {}
  ~StatusLine() { clear(); }
  void show(const std::string& text, bool log_too) {
    if (tty_) {
      std::fprintf(stderr, "\r%s\033[K", text.c_str());
      std::fflush(stderr);
      drawn_ = true;
    } else if (log_too) {
      log_info(text);
    }
  }
  void clear() {
    if (drawn_) std::fprintf(stderr, "\r\033[K");
    drawn_ = false;
  }

 private:
  bool tty_;
  bool drawn_ = false;
};

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace

void check_dataset_matches(const Config& config, const data::Dataset& dataset) {
  const data::EncoderParams& enc = dataset.manifest().encoder;
  const std::string where = dataset.directory().string();
  if (enc.modality != config.data.modality)
    throw Error(
        where,
        "holds " + std::string(data::modality_name(enc.modality)) +
            " but the config's data.modality is " +
            std::string(data::modality_name(config.data.modality)),
        "use a dataset of the same modality (when training, data.modality may be changed instead)");
  const int layout_patch = data::encoder_for(enc.modality).layout_patch_size(enc);
  if (layout_patch != 0 && config.model.kind == model::ModelKind::megabyte &&
      layout_patch != config.model.patch_size)
    throw Error(where,
                "is patch-scanned for patches of " + std::to_string(layout_patch) +
                    " bytes but model.patch_size is " + std::to_string(config.model.patch_size),
                "set model.patch_size=" + std::to_string(layout_patch) +
                    ", or prepare the images again with a --patch-size of the model's");
}

TrainResult train(const Config& config, const data::Dataset& dataset, const TrainOptions& options) {
  check_dataset_matches(config, dataset);
  if (!dataset.has_split("train") || dataset.split("train").bytes() == 0)
    throw Error(dataset.directory().string(), "has no training bytes (its train split is empty)",
                "prepare the dataset from more files");
  // The device first: a run that cannot start leaves no RUNDIR behind, nor one whose plan
  // the device cannot hold.
  std::shared_ptr<backend::Backend> device = backend::make_backend(
      options.device, options.precision.value_or(backend::default_precision(options.device)));
  check_training_fits(config, *device);
  // Held until train() returns: no other process may write RUNDIR meanwhile.
  const RunLock run_lock = open_run_directory(config, options.run_dir, options.resume);
  // A new run records its dataset; a resumed one must be given the same (a run from before
  // the record existed gets one now).
  if (!options.resume || !check_run_dataset(options.run_dir, dataset))
    record_run_dataset(options.run_dir, dataset);
  const model::TrainConfig& tc = config.train;
  const int T = config.model.context, B = tc.batch_size, A = tc.grad_accumulation;

  const auto checkpoints =
      options.resume ? model::list_checkpoints(options.run_dir) : std::vector<fs::path>{};
  // A resumed run continues from the weights of its latest checkpoint, a new one from fresh ones.
  const model::ActivationPolicy policy = model::activation_policy(config.model, tc);
  auto net =
      checkpoints.empty()
          ? model::init_model(config.model, tc.seed, B, std::move(device), policy)
          : model::load_model(checkpoints.back(), config.model, B, std::move(device), policy);
  model::ParameterSet& params = net->parameters();
  model::AdamW optimizer(*net);
  WindowSampler sampler(dataset.split("train"), T, tc.seed);
  model::TrainingState state;
  TrainResult result;

  if (!checkpoints.empty()) {
    const fs::path& latest = checkpoints.back();
    state = model::load_optimizer_state(latest, params, optimizer.m(), optimizer.v());
    sampler.set_position({state.sampler_epoch, state.sampler_index});
    optimizer.upload();
    log_info("resuming from " + latest.string() + " (step " + std::to_string(state.step) + ")");
    result.last_checkpoint = latest;
  } else if (options.resume) {
    log_info("no checkpoint in " + options.run_dir.string() + " yet: starting at step 0");
  }
  result.start_step = state.step;
  if (state.step >= tc.steps) {
    log_info("the run is complete (step " + std::to_string(state.step) + " of " +
             std::to_string(tc.steps) + ")");
    result.step = state.step;
    return result;
  }

  const data::SplitReader* validation =
      dataset.has_split("validation") && dataset.split("validation").bytes() > 0
          ? &dataset.split("validation")
          : nullptr;
  if (!validation)
    log_warning("the dataset has no validation bytes: no validation bpb will be reported");

  MetricsLog metrics(options.run_dir / "metrics.jsonl", state.step);
  log_info("training on " + net->backend()->description() + ", " +
           std::string(backend::precision_name(net->backend()->precision())) + " matrix products");
  const std::int64_t end_step =
      options.max_steps > 0 ? std::min(tc.steps, state.step + options.max_steps) : tc.steps;
  std::vector<std::int32_t> ids(static_cast<std::size_t>(A) * B * T);
  StatusLine status;
  double compute_seconds = 0.0;
  std::uint64_t bytes_seen = 0;
  std::int64_t checkpointed_step = checkpoints.empty() ? -1 : state.step;

  auto save = [&] {
    status.clear();
    const auto pos = sampler.position();
    state.sampler_epoch = pos.epoch;
    state.sampler_index = pos.index;
    net->download_parameters();
    optimizer.download();
    result.last_checkpoint =
        model::save_checkpoint(options.run_dir, config, params, optimizer.m(), optimizer.v(), state,
                               &dataset.manifest().encoder);
    model::prune_checkpoints(options.run_dir, tc.keep_checkpoints);
    checkpointed_step = state.step;
    log_verbose("wrote " + result.last_checkpoint.string());
  };

  auto validate = [&] {
    if (!validation) return;
    status.clear();
    const auto t0 = std::chrono::steady_clock::now();
    const EvalResult r =
        evaluate_plain(*net, *validation, static_cast<std::uint64_t>(tc.eval_bytes));
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    result.last_val_bpb = r.bits_per_byte();
    nlohmann::json j{{"step", state.step},
                     {"val_bpb", r.bits_per_byte()},
                     {"val_bytes", r.bytes},
                     {"val_seconds", secs}};
    metrics.write(j.dump());
    log_info("step " + std::to_string(state.step) + ": validation " + fixed(r.bits_per_byte(), 4) +
             " bpb over " + human_bytes(static_cast<double>(r.bytes)));
  };

  while (state.step < end_step) {
    if (options.interrupted && options.interrupted()) {
      result.interrupted = true;
      break;
    }
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t w = 0; w < static_cast<std::size_t>(A) * B; ++w)
      sampler.read(sampler.next(), ids.data() + w * T);
    const StepResult step = train_step(*net, optimizer, tc, ids.data(), state.step);
    const std::int64_t count = step.bytes;
    const double loss = step.loss_sum, lr = step.lr, grad_norm = step.grad_norm;
    ++state.step;
    compute_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    bytes_seen += static_cast<std::uint64_t>(count);

    const double mean_loss = loss / static_cast<double>(count);
    result.last_loss = mean_loss;
    if (!std::isfinite(mean_loss))
      throw Error(options.run_dir.string(),
                  "the loss is not finite at step " + std::to_string(state.step),
                  "lower train.optimizer.lr, or resume from an earlier checkpoint");
    const double bytes_per_second = static_cast<double>(bytes_seen) / compute_seconds;
    const bool log_step =
        (tc.log_every > 0 && state.step % tc.log_every == 0) || state.step == tc.steps;
    const double eta = static_cast<double>(end_step - state.step) * compute_seconds /
                       static_cast<double>(state.step - result.start_step);
    status.show("step " + std::to_string(state.step) + "/" + std::to_string(tc.steps) + "  loss " +
                    fixed(mean_loss, 4) + "  " + fixed(mean_loss / kLn2, 3) + " bpb  " +
                    human_bytes(bytes_per_second) + "/s  ETA " + human_duration(eta),
                log_step);
    if (log_step) {
      nlohmann::json j{{"step", state.step},
                       {"loss", mean_loss},
                       {"bpb", mean_loss / kLn2},
                       {"lr", lr},
                       {"grad_norm", grad_norm},
                       {"bytes", count},
                       {"bytes_per_second", bytes_per_second}};
      metrics.write(j.dump());
    }
    if ((tc.eval_every > 0 && state.step % tc.eval_every == 0) || state.step == tc.steps)
      validate();
    if ((tc.checkpoint_every > 0 && state.step % tc.checkpoint_every == 0) ||
        state.step == tc.steps)
      save();
  }
  if (state.step != checkpointed_step) save();
  status.clear();
  result.step = state.step;
  return result;
}

}  // namespace mb::train
