// dataset.yaml: what a dataset holds and how its bytes were made (see megabyte-dataset(5)).
// It is written last, so a directory without it is not a dataset; it is validated
// strictly on load, so a typo or a damaged file is an error naming file, line and key.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/encoders/modality.hpp"

namespace mb::data {

inline constexpr int kManifestVersion = 1;
inline constexpr const char* kManifestName = "dataset.yaml";

struct ShardInfo {
  std::string file;  // relative to the dataset directory
  std::uint64_t documents = 0;
  std::uint64_t bytes = 0;             // content bytes
  std::uint64_t compressed_bytes = 0;  // file size
  std::uint64_t checksum = 0;          // xxh64 of the whole file
};

struct SplitInfo {
  std::string name;
  std::uint64_t documents = 0;
  std::uint64_t bytes = 0;
  std::vector<ShardInfo> shards;
  std::uint64_t compressed_bytes() const;
};

struct Manifest {
  int version = kManifestVersion;
  EncoderParams encoder;
  std::vector<SplitInfo> splits;  // "train", then "validation"

  const SplitInfo* find_split(const std::string& name) const;
  std::string to_yaml() const;
  // XXH64 of the splits' names and their shards' checksums, in order: equal for two datasets
  // with the same bytes in the same splits, wherever they lie (a copied or moved dataset),
  // different when a shard's bytes or the split differ. What a training run records of its
  // dataset (lib/train/run_dataset.hpp).
  std::uint64_t fingerprint() const;

  // `file` names the manifest in messages.
  static Manifest parse(const std::string& text, const std::string& file);
  // Reads DIR/dataset.yaml; a directory without one is "not a megabyte dataset".
  static Manifest load(const std::filesystem::path& dir);
};

}  // namespace mb::data
