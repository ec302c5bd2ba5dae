// Reading a dataset: the manifest, and per split the documents of all its shards as one
// list, so that callers address "document d of the train split, bytes [a, b)" and never
// think about shards or frames. Opening checks that every listed shard is present and
// agrees with the manifest; reading checks every frame it decompresses.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "data/frame_cache.hpp"
#include "data/manifest.hpp"
#include "data/shard_reader.hpp"

namespace mb::data {

class SplitReader {
 public:
  SplitReader(const std::filesystem::path& dir, const SplitInfo& info, FrameCache* cache,
              std::uint64_t& next_key);

  const std::string& name() const { return name_; }
  std::uint64_t documents() const { return doc_offsets_.back(); }
  std::uint64_t bytes() const { return bytes_; }
  std::uint64_t document_size(std::uint64_t doc) const;
  const std::string& document_name(std::uint64_t doc) const;
  // Copy out.size() bytes of document `doc` starting at `offset`. Thread-safe.
  void read(std::uint64_t doc, std::uint64_t offset, std::span<std::uint8_t> out) const;
  std::vector<std::uint8_t> read_document(std::uint64_t doc) const;

  const std::vector<ShardReader>& shards() const { return shards_; }

 private:
  std::pair<std::size_t, std::uint64_t> locate(std::uint64_t doc) const;

  std::string name_;
  std::vector<ShardReader> shards_;
  std::vector<std::uint64_t> doc_offsets_;  // first global document of each shard, then the total
  std::uint64_t bytes_ = 0;
};

struct DatasetOptions {
  std::uint64_t cache_bytes = 512ull << 20;  // decompressed frames kept in memory
};

class Dataset {
 public:
  static Dataset open(const std::filesystem::path& dir, DatasetOptions options = {});

  const std::filesystem::path& directory() const { return dir_; }
  const Manifest& manifest() const { return manifest_; }
  bool has_split(const std::string& name) const;
  // Throws an error naming the dataset and the splits it has.
  const SplitReader& split(const std::string& name) const;

 private:
  std::filesystem::path dir_;
  Manifest manifest_;
  std::unique_ptr<FrameCache> cache_;
  std::vector<SplitReader> splits_;
};

// Everything --verify checks, for one shard: the file's size and xxh64 against the
// manifest, the index, every frame's checksum and decompression. Throws on the first fault.
void verify_shard(const std::filesystem::path& dir, const ShardInfo& info);

}  // namespace mb::data
