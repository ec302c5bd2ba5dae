#include "train/run_dataset.hpp"

#include <system_error>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/yaml_util.hpp"

namespace mb::train {

namespace fs = std::filesystem;

void record_run_dataset(const fs::path& run_dir, const data::Dataset& dataset) {
  std::error_code ec;
  const fs::path where = fs::absolute(dataset.directory(), ec);
  YAML::Emitter out;
  out << YAML::Comment(
      "The dataset this run trains on; megabyte train --resume checks it (megabyte-train(1))");
  out << YAML::BeginMap;
  out << YAML::Key << "dataset" << YAML::Value
      << (ec ? dataset.directory() : where).lexically_normal().string();
  out << YAML::Key << "fingerprint" << YAML::Value << YAML::DoubleQuoted
      << to_hex64(dataset.manifest().fingerprint());
  out << YAML::EndMap;
  write_file_atomic(run_dir / kRunDatasetFile, std::string(out.c_str()) + "\n");
}

bool check_run_dataset(const fs::path& run_dir, const data::Dataset& dataset) {
  const fs::path file = run_dir / kRunDatasetFile;
  std::error_code ec;
  if (!fs::exists(file, ec)) return false;
  const YamlMap record(yaml_load_file(file.string()), file.string(), "");
  record.allow_only({"dataset", "fingerprint"});
  const std::string recorded = record.string("dataset");
  const std::uint64_t fingerprint =
      parse_hex64(record.string("fingerprint"), record.where("fingerprint"));
  if (fingerprint != dataset.manifest().fingerprint())
    throw Error(dataset.directory().string(),
                "is not the dataset this run was trained on (" + file.string() + " names " +
                    recorded + ", whose shards differ)",
                "resume with that dataset, or start a new run in a new directory with -o");
  return true;
}

}  // namespace mb::train
