// Reads one shard: the index from its footer, then any byte range of any document by
// decompressing only the frames that hold it. Every frame's checksum is checked before it
// is used, so corruption is reported with the shard, the frame and its offset.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "core/file_io.hpp"
#include "data/frame_cache.hpp"
#include "data/shard_format.hpp"

namespace mb::data {

class ShardReader {
 public:
  // Opens the file and reads its index (its checksum checked). `cache` may be shared with
  // other shards; `cache_key_base` must be unique per shard within one cache.
  ShardReader(const std::filesystem::path& path, FrameCache* cache, std::uint64_t cache_key_base);

  const ShardIndex& index() const { return index_; }
  const std::filesystem::path& path() const { return file_.path(); }
  std::uint64_t file_size() const { return file_.size(); }
  std::uint64_t documents() const { return index_.documents(); }
  std::uint64_t document_size(std::uint64_t doc) const;

  // Copy out.size() bytes of document `doc` from byte `offset`; throws if out of range.
  void read(std::uint64_t doc, std::uint64_t offset, std::span<std::uint8_t> out) const;

  // Decompress frame i (checksum and size checked); bypasses the cache.
  std::vector<std::uint8_t> decompress_frame(std::size_t i) const;

  // Check every frame: checksum, decompression (zstd's own checksum) and size.
  void verify_frames() const;

 private:
  FrameBytes frame(std::size_t i) const;
  std::string frame_where(std::size_t i) const;

  ReadOnlyFile file_;
  ShardIndex index_;
  FrameCache* cache_;
  std::uint64_t key_base_;
};

}  // namespace mb::data
