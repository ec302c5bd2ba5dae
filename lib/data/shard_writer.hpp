// Writes one shard: documents go in, fixed-size frames are compressed in parallel on a
// shared thread pool and written in order, and finish() appends the index and commits the
// file atomically. The output depends only on the documents and the options, never on
// the thread count.
#pragma once

#include <cstdint>
#include <deque>
#include <filesystem>
#include <future>
#include <span>
#include <string>
#include <vector>

#include "core/atomic_file.hpp"
#include "core/hash.hpp"
#include "core/thread_pool.hpp"
#include "data/shard_format.hpp"

namespace mb::data {

struct ShardWriterOptions {
  std::uint64_t frame_bytes = 2u << 20;  // content bytes per zstd frame
  int level = 3;                         // zstd level
};

struct ShardSummary {
  std::string file;  // file name, relative to the dataset directory
  std::uint64_t documents = 0;
  std::uint64_t bytes = 0;             // content bytes
  std::uint64_t compressed_bytes = 0;  // file size
  std::uint64_t checksum = 0;          // xxh64 of the whole file
};

class ShardWriter {
 public:
  ShardWriter(std::filesystem::path path, ShardWriterOptions options, ThreadPool& pool);
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  void add_document(const std::string& name, std::span<const std::uint8_t> bytes);
  std::uint64_t content_bytes() const { return content_; }
  std::uint64_t documents() const { return index_.doc_names.size(); }

  // Compress what is pending, write the index, and give the file its final name.
  ShardSummary finish();

 private:
  void submit_frame();
  void write_oldest_frame();
  void write_bytes(std::span<const std::uint8_t> bytes);

  std::filesystem::path path_;
  ShardWriterOptions options_;
  ThreadPool& pool_;
  AtomicFile file_;
  Xxh64Stream file_hash_;
  ShardIndex index_;
  std::vector<std::uint8_t> pending_;  // content of the frame being filled
  std::uint64_t content_ = 0;
  std::uint64_t frame_content_offset_ = 0;
  struct InFlight {
    std::future<std::vector<std::uint8_t>> compressed;
    std::uint64_t content_offset, content_size;
  };
  std::deque<InFlight> in_flight_;
};

// Compress one frame with content size and checksum recorded in its header, so that
// `zstd -l` and `zstd -t` can check it on their own.
std::vector<std::uint8_t> compress_frame(std::span<const std::uint8_t> content, int level);

}  // namespace mb::data
