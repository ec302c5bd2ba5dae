// Writes a whole dataset directory: documents are appended to the shards of their split
// (a new shard starts when the current one holds `shard_bytes`), then commit() finishes the
// shards, writes dataset.yaml last and renames the directory into place. Until commit()
// returns, the target name does not exist; if anything fails, nothing is left behind.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

#include "core/atomic_file.hpp"
#include "core/thread_pool.hpp"
#include "data/encoders/modality.hpp"
#include "data/manifest.hpp"
#include "data/shard_writer.hpp"

namespace mb::data {

enum class Split { train = 0, validation = 1 };
std::string split_name(Split s);

struct DatasetWriterOptions {
  std::uint64_t shard_bytes = 256ull << 20;  // content bytes per shard (a document never spans two)
  ShardWriterOptions shard;
};

class DatasetWriter {
 public:
  DatasetWriter(const std::filesystem::path& out_dir, const EncoderParams& encoder,
                DatasetWriterOptions options, ThreadPool& pool);
  ~DatasetWriter();

  void add_document(Split split, const std::string& name, std::span<const std::uint8_t> bytes);
  // Finish everything and publish the directory; returns the manifest written.
  Manifest commit();

 private:
  struct SplitState {
    SplitInfo info;
    std::unique_ptr<ShardWriter> current;
  };
  void add_document_staged(Split split, const std::string& name,
                           std::span<const std::uint8_t> bytes);
  Manifest commit_staged();
  void close_shard(SplitState& s);

  AtomicDirectory dir_;
  EncoderParams encoder_;
  DatasetWriterOptions options_;
  ThreadPool& pool_;
  SplitState splits_[2];
};

}  // namespace mb::data
