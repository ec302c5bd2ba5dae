// megabyte info: describe a dataset (and, with --verify, check every checksum in it).
#include <iostream>

#include "command.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/progress.hpp"
#include "data/dataset.hpp"
#include "data/manifest.hpp"
#include "report.hpp"

namespace mb::tools {

namespace {

struct InfoArgs {
  std::string path;
  bool verify = false;
  bool json = false;
};

int run_info(const InfoArgs& a) {
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
  CLI::App* sub = app.add_subcommand("info", "Describe a dataset: modality, encoder, splits, sizes");
  sub->footer("\nExamples:\n  megabyte info data/kjv\n  megabyte info --verify --json data/kjv\n\nSee megabyte-info(1).");
  sub->add_option("path", a->path, "A dataset directory")->required();
  sub->add_flag("--verify", a->verify, "Check every shard's checksum, index and frames");
  sub->add_flag("--json", a->json, "Print as JSON");
  return [a] { return run_info(*a); };
}

}  // namespace mb::tools
