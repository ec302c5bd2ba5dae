// megabyte eval: bits per byte of a checkpoint on a dataset split, the paper's three ways.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>

#include "backend/backend.hpp"
#include "command.hpp"
#include "device_options.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/progress.hpp"
#include "data/dataset.hpp"
#include "data/encoders/registry.hpp"
#include "model/checkpoint.hpp"
#include "model/load_model.hpp"
#include "model/model.hpp"
#include "train/evaluate.hpp"
#include "train/trainer.hpp"

namespace mb::tools {

namespace {

struct EvalArgs {
  std::string checkpoint, dataset;
  std::string split = "validation";
  std::uint64_t stride = 0;
  bool strided = false;
  bool per_doc = false;
  bool per_position = false;
  bool context_curve = false;
  bool json = false;
  std::uint64_t max_bytes = 0;
  int batch = 8;
  DeviceOptions devices;
  int threads = 0;
};

std::string method_name(const EvalArgs& a, int T) {
  std::string m =
      a.stride == 0 || a.stride == static_cast<std::uint64_t>(T)
          ? "windows of T = " + std::to_string(T) + " back to back"
          : "sliding window, T = " + std::to_string(T) + ", stride " + std::to_string(a.stride);
  if (a.strided) m += ", strided inference (two passes, offset P/2)";
  if (a.max_bytes) m += "; a prefix of the split (--max-bytes " + std::to_string(a.max_bytes) + ")";
  return m;
}

// A window position as the curve's table shows it: 1024 -> "1K", 1048576 -> "1M", others
// as they are.
std::string human_count(std::uint64_t n) {
  if (n >= (1u << 20) && n % (1u << 20) == 0) return std::to_string(n >> 20) + "M";
  if (n >= 1024 && n % 1024 == 0) return std::to_string(n >> 10) + "K";
  return std::to_string(n);
}

std::string bpb_text(const train::EvalResult& r) {
  if (r.bytes == 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", r.bits_per_byte());
  return buf;
}

int run_eval(const EvalArgs& a) {
  backend::set_cpu_threads(a.threads);
  const std::filesystem::path dir = model::resolve_checkpoint(a.checkpoint);
  const model::CheckpointInfo info = model::read_checkpoint_info(dir);
  const data::Dataset dataset = data::Dataset::open(a.dataset);
  train::check_dataset_matches(info.config, dataset);
  const data::SplitReader& split = dataset.split(a.split);

  auto backend = a.devices.make_backend();
  const backend::Device device = backend->device();
  auto net = model::load_model(
      dir, info.config.model, a.batch, std::move(backend),
      // The run's own local chunks (or smaller): the same logits and losses, in the memory the
      // run trained in (a window of a million bytes needs them), less all that training keeps.
      model::inference_policy(info.config.model, info.config.train, device));

  train::EvalOptions opt;
  opt.stride = a.stride;
  opt.strided = a.strided;
  opt.max_bytes = a.max_bytes;
  opt.per_document = a.per_doc;
  opt.per_position = a.per_position;
  opt.context_curve = a.context_curve;
  const std::uint64_t target = a.max_bytes ? std::min(a.max_bytes, split.bytes()) : split.bytes();
  Progress progress("eval", target, "bytes");
  opt.progress = [&](std::uint64_t bytes) {
    progress.update(bytes, bytes);
    return !g_interrupted.load();
  };
  const auto t0 = std::chrono::steady_clock::now();
  const train::EvalReport report = train::evaluate(*net, split, opt);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  progress.finish();
  if (report.stopped) return kExitInterrupted;  // nothing printed for a partial score

  const train::EvalResult& r = report.total;
  const bool per_dim = data::encoder_for(dataset.manifest().encoder.modality).scores_bits_per_dim();
  const double bytes_per_second = seconds > 0 ? static_cast<double>(r.bytes) / seconds : 0.0;
  if (a.json) {
    nlohmann::json j{
        {"checkpoint", dir.string()},
        {"step", info.step},
        {"dataset", a.dataset},
        {"split", a.split},
        {"context", info.config.model.context},
        {"stride", a.stride ? a.stride : static_cast<std::uint64_t>(info.config.model.context)},
        {"strided", a.strided},
        {"max_bytes", a.max_bytes},
        {"bytes", r.bytes},
        {"documents", r.documents},
        {"seconds", seconds},
        {"bytes_per_second", bytes_per_second}};
    j["bpb"] = r.bytes ? nlohmann::json(r.bits_per_byte()) : nlohmann::json(nullptr);
    if (per_dim) j["bits_per_dim"] = j["bpb"];
    if (a.per_doc) {
      j["per_document"] = nlohmann::json::array();
      for (const train::DocumentScore& d : report.documents)
        j["per_document"].push_back({{"document", d.document},
                                     {"name", split.document_name(d.document)},
                                     {"bytes", d.bytes},
                                     {"bpb", d.bits_per_byte()}});
    }
    if (a.per_position) {
      j["per_position"] = nlohmann::json::array();
      for (std::size_t p = 0; p < report.positions.size(); ++p)
        j["per_position"].push_back(
            {{"position", p},
             {"bytes", report.positions[p].bytes},
             {"bpb", report.positions[p].bytes ? nlohmann::json(report.positions[p].bits_per_byte())
                                               : nlohmann::json(nullptr)}});
    }
    if (a.context_curve) {
      j["context_curve"] = nlohmann::json::array();
      for (const train::ContextBucket& b : report.context_curve)
        j["context_curve"].push_back(
            {{"first", b.first},
             {"last", b.last},
             {"bytes", b.result.bytes},
             {"bpb", b.result.bytes ? nlohmann::json(b.result.bits_per_byte())
                                    : nlohmann::json(nullptr)}});
    }
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::printf("checkpoint  %s (step %lld)\n", dir.c_str(), static_cast<long long>(info.step));
  std::printf("dataset     %s, split %s\n", a.dataset.c_str(), a.split.c_str());
  std::printf("method      %s\n\n", method_name(a, info.config.model.context).c_str());
  std::printf("%-12s %8s%s %12s %10s %9s %12s\n", "split", "bpb", per_dim ? "  bits/dim" : "",
              "bytes", "documents", "seconds", "bytes/s");
  const std::string bpb = bpb_text(r);
  std::printf(
      "%-12s %8s%s%s %12llu %10llu %9.2f %12s\n", a.split.c_str(), bpb.c_str(), per_dim ? "  " : "",
      per_dim ? (std::string(8 - std::min<std::size_t>(8, bpb.size()), ' ') + bpb).c_str() : "",
      static_cast<unsigned long long>(r.bytes), static_cast<unsigned long long>(r.documents),
      seconds, (human_bytes(bytes_per_second) + "/s").c_str());
  if (a.per_position) {
    std::printf("\n%8s %12s %8s\n", "position", "bytes", "bpb");
    for (std::size_t p = 0; p < report.positions.size(); ++p)
      std::printf("%8zu %12llu %8s\n", p,
                  static_cast<unsigned long long>(report.positions[p].bytes),
                  bpb_text(report.positions[p]).c_str());
  }
  if (a.context_curve) {
    std::printf("\n%-17s %12s %8s\n", "window positions", "bytes", "bpb");
    for (const train::ContextBucket& b : report.context_curve) {
      const std::string range = human_count(b.first) + "-" + human_count(b.last);
      std::printf("%-17s %12llu %8s\n", range.c_str(),
                  static_cast<unsigned long long>(b.result.bytes), bpb_text(b.result).c_str());
    }
  }
  if (a.per_doc) {
    std::printf("\n%12s %8s  %s\n", "bytes", "bpb", "document");
    for (const train::DocumentScore& d : report.documents)
      std::printf("%12llu %8.4f  %s\n", static_cast<unsigned long long>(d.bytes), d.bits_per_byte(),
                  split.document_name(d.document).c_str());
  }
  return kExitOk;
}

}  // namespace

RunFunction add_eval_command(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* sub = app.add_subcommand("eval", "Bits per byte of a checkpoint on a dataset split");
  sub->footer(
      "\nExamples:\n"
      "  megabyte eval runs/kjv data/dev/kjv.dataset\n"
      "  megabyte eval runs/kjv data/dev/kjv.dataset --stride 256 --strided\n"
      "  megabyte eval runs/kjv data/dev/kjv.dataset --per-doc --json\n"
      "  megabyte eval runs/long data/dev/long.dataset --context-curve\n"
      "\nEvery document is scored from an empty context; bpb = sum of -log2 p / bytes.\n"
      "See megabyte-eval(1).");
  sub->add_option(
         "CHECKPOINT", a->checkpoint,
         "A run directory (its newest checkpoint), a checkpoint directory or its model.safetensors")
      ->required();
  sub->add_option("DATASET", a->dataset, "A dataset directory written by 'megabyte prepare'")
      ->required();
  sub->add_option("--split", a->split, "The split to score")->capture_default_str();
  sub->add_option("--stride", a->stride,
                  "Sliding window: start a window every S bytes (1..T; T = plain windows)")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
  sub->add_flag("--strided", a->strided, "The paper's strided inference: two passes offset by P/2");
  sub->add_flag("--per-doc", a->per_doc, "Also report every document");
  sub->add_flag("--per-position", a->per_position,
                "Also report bpb by position within a patch (where in a patch the loss lies)");
  sub->add_flag("--context-curve", a->context_curve,
                "Also report bpb by the byte's position in its window, in doubling buckets "
                "(0-1K, 1K-2K, 2K-4K, ... T): what a longer context buys");
  sub->add_option("--max-bytes", a->max_bytes,
                  "Score only a prefix of the split: at least this many bytes, in whole windows "
                  "(K, M, G suffixes)")
      ->transform(CLI::AsSizeValue(false));
  sub->add_option("--batch", a->batch, "Windows per forward pass")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  sub->add_option("-j,--threads", a->threads, "CPU threads (default: all)")
      ->check(CLI::Range(1, 4096));
  add_device_options(sub, a->devices);
  sub->add_flag("--json", a->json, "Print as JSON");
  return [a] { return run_eval(*a); };
}

}  // namespace mb::tools
