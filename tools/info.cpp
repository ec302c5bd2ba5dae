// megabyte info: describe a dataset (with --verify, check every checksum in it) or a checkpoint
// (its config, step and parameter counts).
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "command.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/progress.hpp"
#include "data/dataset.hpp"
#include "data/manifest.hpp"
#include "model/checkpoint.hpp"
#include "model/model.hpp"
#include "report.hpp"

namespace mb::tools {

namespace {

struct InfoArgs {
  std::string path;
  bool verify = false;
  bool json = false;
};

std::string millions(std::size_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3fM", static_cast<double>(n) / 1e6);
  return buf;
}

int run_checkpoint_info(const InfoArgs& a) {
  const std::filesystem::path dir = model::resolve_checkpoint(a.path);
  const model::CheckpointInfo info = model::read_checkpoint_info(dir, false);
  const model::ModelConfig& c = info.config.model;
  const auto net = model::make_model(c, 0);  // the parameter table only, nothing allocated
  const model::ParameterSet& ps = net->parameters();
  // --verify: every byte of both files against its checksum, every tensor against the config.
  if (a.verify) model::verify_checkpoint(dir, ps);
  using model::ParamGroup;
  if (a.json) {
    nlohmann::json j{{"checkpoint", dir.string()},
                     {"step", info.step},
                     {"kind", std::string(model::model_kind_name(c.kind))},
                     {"parameters",
                      {{"total", ps.count()},
                       {"global", ps.count(ParamGroup::global)},
                       {"local", ps.count(ParamGroup::local)},
                       {"embedding", ps.count(ParamGroup::embedding)}}},
                     {"tensors", ps.tensors().size()},
                     {"config", model::config_to_yaml(info.config)}};
    if (a.verify) j["verified"] = true;
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << "checkpoint  " << dir.string() << "\n"
            << "step        " << info.step << " of " << info.config.train.steps << "\n"
            << "model       " << model::model_kind_name(c.kind) << ", T " << c.context;
  if (c.kind == model::ModelKind::megabyte)
    std::cout << ", P " << c.patch_size << ", global " << c.global.layers << "x" << c.global_width()
              << " (D_G " << c.global.dim << "), local " << c.local.layers << "x" << c.local.dim;
  else
    std::cout << ", " << c.global.layers << "x" << c.global.dim;
  std::cout << "\n\nparameters  " << millions(ps.count()) << " (" << ps.tensors().size()
            << " tensors)\n"
            << "  global     " << millions(ps.count(ParamGroup::global)) << "\n"
            << "  local      " << millions(ps.count(ParamGroup::local)) << "\n"
            << "  embedding  " << millions(ps.count(ParamGroup::embedding)) << "\n";
  if (a.verify)
    std::cout
        << "\nverified: both files' checksums match, and every tensor has its config's shape\n";
  std::cout << "\nconfig:\n" << model::config_to_yaml(info.config);
  return kExitOk;
}

int run_info(const InfoArgs& a) {
  // A dataset is a directory with a manifest; a checkpoint is a file, a checkpoint directory
  // or a run directory. Anything else gets the dataset reader's error.
  namespace fs = std::filesystem;
  const fs::path p(a.path);
  std::error_code ec;
  if (!fs::exists(p / "dataset.yaml", ec) &&
      (fs::is_regular_file(p, ec) || fs::exists(p / "model.safetensors", ec) ||
       fs::exists(p / "checkpoints", ec) || fs::exists(p / "config.yaml", ec)))
    return run_checkpoint_info(a);
  // Opening checks the manifest, and that every shard is present, has its index and agrees
  // with the manifest.
  const data::Dataset ds = data::Dataset::open(a.path);
  const data::Manifest& m = ds.manifest();
  std::uint64_t shards_verified = 0;
  if (a.verify) {
    std::uint64_t total = 0, done_bytes = 0;
    for (const auto& s : m.splits) total += s.shards.size();
    Progress progress("verify", total, "shards");
    for (const auto& s : m.splits)
      for (const auto& sh : s.shards) {
        if (g_interrupted.load()) throw Error(a.path, "interrupted");
        data::verify_shard(a.path, sh);
        done_bytes += sh.compressed_bytes;
        progress.update(++shards_verified, done_bytes);
      }
    progress.finish();
  }
  if (a.json) {
    auto j = dataset_json(a.path, m);
    if (a.verify) j["verified_shards"] = shards_verified;
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << dataset_table(a.path, m);
    if (a.verify)
      std::cout << "\nverified " << shards_verified << (shards_verified == 1 ? " shard" : " shards")
                << ": all checksums match\n";
  }
  return kExitOk;
}

}  // namespace

RunFunction add_info_command(CLI::App& app) {
  auto a = std::make_shared<InfoArgs>();
  CLI::App* sub = app.add_subcommand(
      "info", "Describe a dataset (splits, sizes) or a checkpoint (config, step, parameters)");
  sub->footer(
      "\nExamples:\n  megabyte info data/kjv\n  megabyte info --verify --json data/kjv\n"
      "  megabyte info runs/kjv                 (its newest checkpoint)\n"
      "  megabyte info runs/kjv/checkpoints/step-00000600/model.safetensors\n\nSee "
      "megabyte-info(1).");
  sub->add_option(
         "path", a->path,
         "A dataset directory, a run directory, a checkpoint directory or its model.safetensors")
      ->required();
  sub->add_flag("--verify", a->verify,
                "Check every checksum (dataset: shards, index, frames; checkpoint: the weights)");
  sub->add_flag("--json", a->json, "Print as JSON");
  return [a] { return run_info(*a); };
}

}  // namespace mb::tools
