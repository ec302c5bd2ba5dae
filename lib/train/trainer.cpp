#include "train/trainer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cerrno>
#include <cmath>
#include <optional>
#include <cstdio>
#include <sstream>
#include <vector>

#include "core/error.hpp"
#include "core/log.hpp"
#include "core/progress.hpp"
#include "data/encoders/registry.hpp"
#include "dist/collectives.hpp"
#include "dist/job.hpp"
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
#include "train/step_share.hpp"
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

namespace {

// What every rank of a job must agree on before the first step: the resolved config and the
// rest of the command line that shapes the run, and the dataset (by its fingerprint).
std::string run_identity(const Config& config, const data::Dataset& dataset,
                         const TrainOptions& options) {
  return model::config_to_yaml(config) + "# RUNDIR " + options.run_dir.string() + "\n# " +
         (options.resume ? "--resume" : "a new run") + "\n# --max-steps " +
         std::to_string(options.max_steps) + "\n# device " +
         std::string(backend::device_name(options.device)) + "\n# dataset " +
         std::to_string(dataset.manifest().fingerprint()) + "\n";
}

// The first line on which two run identities differ, as "rank 0's LINE, here LINE".
std::string first_difference(const std::string& root, const std::string& mine) {
  std::istringstream a(root), b(mine);
  std::string x, y;
  while (true) {
    const bool more_a = static_cast<bool>(std::getline(a, x));
    const bool more_b = static_cast<bool>(std::getline(b, y));
    if (!more_a && !more_b) return {};
    if (!more_a) x = "(nothing)";
    if (!more_b) y = "(nothing)";
    if (x != y) return "rank 0 has '" + x + "', this rank '" + y + "'";
  }
}

// Every rank writes, reads back and removes a small file in RUNDIR: each must be able to write
// there, and all must see the same directory (rank 0's config.yaml), since a resume reads it.
void check_run_dir_reachable(const fs::path& dir, const dist::Job& job) {
  const fs::path probe = dir / (".rank-" + std::to_string(job.rank()) + ".probe");
  if (!fs::exists(dir / "config.yaml"))
    throw Error(dir.string(), "does not show rank 0's config.yaml here",
                "give every rank the same RUNDIR on a file system they all see");
  const std::string text = job.who() + "\n";
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err = fd < 0 ? errno : 0;
  if (fd >= 0) {
    if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
      err = errno ? errno : EIO;
    if (::close(fd) != 0 && err == 0) err = errno;
  }
  if (err != 0) {
    std::error_code ec;
    fs::remove(probe, ec);
    throw Error(dir.string(), "cannot be written by this process: " + errno_text(err),
                "give every rank a RUNDIR it may write (rank 0 writes the checkpoints; every "
                "rank must reach them to resume)");
  }
  std::error_code ec;
  fs::remove(probe, ec);
}

}  // namespace

TrainResult train(const Config& config, const data::Dataset& dataset, const TrainOptions& options) {
  dist::Job& job = dist::Job::get();
  const model::TrainConfig& tc = config.train;
  const int T = config.model.context, B = tc.batch_size, A = tc.grad_accumulation;
  // Before anything else: every rank runs the same run, and its step can be shared.
  job.together([&] {
    std::string root = run_identity(config, dataset, options);
    const std::string mine = root;
    job.broadcast(root);
    if (root != mine)
      throw Error(options.run_dir.string(),
                  "this rank was started with another config, dataset or options than rank 0 (" +
                      first_difference(root, mine) + ")",
                  "give every rank the same command line (mpirun and srun do)");
  });
  StepParallel parallel;
  parallel.share = share_step(B, A, job.size(), job.rank());  // AgreedError where it cannot
  parallel.job = &job;

  job.together([&] {
    check_dataset_matches(config, dataset);
    if (!dataset.has_split("train") || dataset.split("train").bytes() == 0)
      throw Error(dataset.directory().string(), "has no training bytes (its train split is empty)",
                  "prepare the dataset from more files");
  });
  // The device first: a run that cannot start leaves no RUNDIR behind, nor one whose plan
  // the device cannot hold. One GPU per rank of a machine.
  std::shared_ptr<backend::Backend> device;
  job.together([&] {
    if (options.device == backend::Device::cuda && !job.single())
      backend::select_cuda_device(job.local_rank(), job.who());
    device = backend::make_backend(
        options.device, options.precision.value_or(backend::default_precision(options.device)));
    check_training_fits(config, *device, job.size());
  });
  // Rank 0 alone writes RUNDIR, and holds its lock until train() returns: no other process
  // may write it meanwhile. Every rank then checks that it reaches the same RUNDIR.
  std::optional<RunLock> run_lock;
  job.together([&] {
    if (!job.is_root()) return;
    run_lock.emplace(open_run_directory(config, options.run_dir, options.resume));
    // A new run records its dataset; a resumed one must be given the same (a run from before
    // the record existed gets one now).
    if (!options.resume || !check_run_dataset(options.run_dir, dataset))
      record_run_dataset(options.run_dir, dataset);
  });
  if (!job.single()) job.together([&] { check_run_dir_reachable(options.run_dir, job); });

  // The checkpoint to continue from: rank 0's choice, checked to be there on every rank.
  std::string latest_name;
  if (job.is_root() && options.resume) {
    const auto checkpoints = model::list_checkpoints(options.run_dir);
    if (!checkpoints.empty()) latest_name = checkpoints.back().string();
  }
  job.broadcast(latest_name);
  const fs::path latest = latest_name;
  job.together([&] {
    if (!latest.empty() && !fs::exists(latest))
      throw Error(latest.string(), "is rank 0's latest checkpoint but is not there on this rank",
                  "give every rank the same RUNDIR on a file system they all see");
  });

  // A resumed run continues from the weights of its latest checkpoint, a new one from fresh ones.
  const model::ActivationPolicy policy = model::activation_policy(config.model, tc);
  // Buffers for the most windows this rank runs at once.
  const int micro_batch = std::min(B, parallel.share.windows);
  auto net = latest.empty()
                 ? model::init_model(config.model, tc.seed, micro_batch, std::move(device), policy)
                 : model::load_model(latest, config.model, micro_batch, std::move(device), policy);
  model::ParameterSet& params = net->parameters();
  const std::size_t n_params = params.buffer_size();
  // With train.zero 1 each rank keeps the optimizer state of its part of the parameters.
  const dist::Sharding sharding(n_params, tc.zero ? job.size() : 1);
  const dist::Range shard = sharding.part(tc.zero ? job.rank() : 0);
  model::AdamW optimizer(*net, shard);
  if (tc.zero) parallel.sharding = &sharding;
  const auto collectives = dist::make_collectives(job, *net->backend());
  parallel.collectives = collectives.get();
  // Every rank draws every window of a step (the sampler's state stays the same on all of
  // them) and reads only its own.
  WindowSampler sampler(dataset.split("train"), T, tc.seed);
  model::TrainingState state;
  TrainResult result;

  if (!latest.empty()) {
    if (shard.size() == n_params) {
      state = model::load_optimizer_state(latest, params, optimizer.m(), optimizer.v());
    } else {
      std::vector<float> m(n_params), v(n_params);
      state = model::load_optimizer_state(latest, params, m, v);
      std::copy(m.begin() + shard.begin, m.begin() + shard.end, optimizer.m().begin());
      std::copy(v.begin() + shard.begin, v.begin() + shard.end, optimizer.v().begin());
    }
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
  if (!job.single()) {
    const StepShare& share = parallel.share;
    log_info(std::to_string(job.size()) + " processes share each step of " + std::to_string(A * B) +
             " windows: " + std::to_string(share.windows) + " each, in micro-batches of at most " +
             std::to_string(std::min(B, share.windows)) + "; gradients summed over " +
             collectives->engine() + (tc.zero ? "; optimizer state sharded (train.zero 1)" : ""));
  }

  const data::SplitReader* validation =
      dataset.has_split("validation") && dataset.split("validation").bytes() > 0
          ? &dataset.split("validation")
          : nullptr;
  if (!validation)
    log_warning("the dataset has no validation bytes: no validation bpb will be reported");

  // Rank 0 alone writes the metrics log, the checkpoints and the progress line.
  std::optional<MetricsLog> metrics;
  if (job.is_root()) metrics.emplace(options.run_dir / "metrics.jsonl", state.step);
  log_info("training on " + net->backend()->description() + ", " +
           std::string(backend::precision_name(net->backend()->precision())) + " matrix products");
  const std::int64_t end_step =
      options.max_steps > 0 ? std::min(tc.steps, state.step + options.max_steps) : tc.steps;
  const StepShare& share = parallel.share;
  std::vector<std::int32_t> ids(static_cast<std::size_t>(share.windows) * T);
  StatusLine status;
  double compute_seconds = 0.0;
  std::uint64_t bytes_seen = 0;
  std::int64_t checkpointed_step = latest.empty() ? -1 : state.step;

  auto save = [&] {
    status.clear();
    const auto pos = sampler.position();
    state.sampler_epoch = pos.epoch;
    state.sampler_index = pos.index;
    net->download_parameters();
    optimizer.download();
    // A sharded optimizer's moments are gathered on rank 0: a checkpoint is the same files
    // whatever the number of processes, so a run resumes on any number.
    std::vector<float> whole_m, whole_v;
    const bool sharded = shard.size() != n_params;
    if (sharded) {
      if (job.is_root()) whole_m.resize(n_params), whole_v.resize(n_params);
      job.gather_to_root(optimizer.m().data(), whole_m.data(), sharding);
      job.gather_to_root(optimizer.v().data(), whole_v.data(), sharding);
    }
    if (job.is_root()) {
      result.last_checkpoint = model::save_checkpoint(
          options.run_dir, config, params, sharded ? whole_m : optimizer.m(),
          sharded ? whole_v : optimizer.v(), state, &dataset.manifest().encoder);
      model::prune_checkpoints(options.run_dir, tc.keep_checkpoints);
      log_verbose("wrote " + result.last_checkpoint.string());
    }
    checkpointed_step = state.step;
  };

  // Validation windows are dealt out to the ranks in turn and their sums added up.
  auto validate = [&] {
    if (!validation) return;
    status.clear();
    const auto t0 = std::chrono::steady_clock::now();
    EvalOptions opt;
    opt.max_bytes = static_cast<std::uint64_t>(tc.eval_bytes);
    opt.share_index = job.rank();
    opt.share_count = job.size();
    EvalResult r = evaluate(*net, *validation, opt).total;
    double loss = r.loss;
    std::int64_t bytes = static_cast<std::int64_t>(r.bytes);
    job.sum(&loss, 1);
    job.sum(&bytes, 1);
    r.loss = loss;
    r.bytes = static_cast<std::uint64_t>(bytes);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    result.last_val_bpb = r.bits_per_byte();
    nlohmann::json j{{"step", state.step},
                     {"val_bpb", r.bits_per_byte()},
                     {"val_bytes", r.bytes},
                     {"val_seconds", secs}};
    if (metrics) metrics->write(j.dump());
    log_info("step " + std::to_string(state.step) + ": validation " + fixed(r.bits_per_byte(), 4) +
             " bpb over " + human_bytes(static_cast<double>(r.bytes)));
  };

  while (state.step < end_step) {
    // Every rank stops at the same step, whichever of them was signalled.
    if (job.any(options.interrupted && options.interrupted())) {
      result.interrupted = true;
      break;
    }
    const auto t0 = std::chrono::steady_clock::now();
    for (int w = 0; w < A * B; ++w) {
      const auto window = sampler.next();
      if (w >= share.first_window && w < share.first_window + share.windows)
        sampler.read(window, ids.data() + static_cast<std::size_t>(w - share.first_window) * T);
    }
    const StepResult step = train_step(*net, optimizer, tc, ids.data(), state.step, &parallel);
    const std::int64_t count = step.bytes;
    const double loss = step.loss_sum, lr = step.lr, grad_norm = step.grad_norm;
    ++state.step;
    compute_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    bytes_seen += static_cast<std::uint64_t>(count);

    const double mean_loss = loss / static_cast<double>(count);
    result.last_loss = mean_loss;
    if (!std::isfinite(mean_loss))  // the same on every rank: the loss is their sum
      throw dist::AgreedError(options.run_dir.string(),
                              "the loss is not finite at step " + std::to_string(state.step),
                              "lower train.optimizer.lr, or resume from an earlier checkpoint");
    const double bytes_per_second = static_cast<double>(bytes_seen) / compute_seconds;
    const bool log_step =
        (tc.log_every > 0 && state.step % tc.log_every == 0) || state.step == tc.steps;
    const double eta = static_cast<double>(end_step - state.step) * compute_seconds /
                       static_cast<double>(state.step - result.start_step);
    if (job.is_root())
      status.show("step " + std::to_string(state.step) + "/" + std::to_string(tc.steps) +
                      "  loss " + fixed(mean_loss, 4) + "  " + fixed(mean_loss / kLn2, 3) +
                      " bpb  " + human_bytes(bytes_per_second) + "/s  ETA " + human_duration(eta),
                  log_step);
    if (log_step && metrics) {
      nlohmann::json j{{"step", state.step},
                       {"loss", mean_loss},
                       {"bpb", mean_loss / kLn2},
                       {"lr", lr},
                       {"grad_norm", grad_norm},
                       {"bytes", count},
                       {"bytes_per_second", bytes_per_second}};
      metrics->write(j.dump());
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
