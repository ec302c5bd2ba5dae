// A least-recently-used cache of decompressed frames, shared by all the shards of a
// dataset and bounded in bytes. Training reads many short random windows; with the cache a
// window costs a lookup and a memcpy instead of decompressing a frame of a few MiB.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace mb::data {

using FrameBytes = std::shared_ptr<const std::vector<std::uint8_t>>;

class FrameCache {
 public:
  explicit FrameCache(std::uint64_t capacity_bytes) : capacity_(capacity_bytes) {}

  // The frame with this key, loaded with `load` on a miss. Thread-safe; `load` runs
  // outside the lock so that threads decompress different frames at once.
  FrameBytes get(std::uint64_t key, const std::function<std::vector<std::uint8_t>()>& load);

  std::uint64_t capacity_bytes() const { return capacity_; }
  std::uint64_t held_bytes() const;

 private:
  struct Entry {
    FrameBytes bytes;
    std::list<std::uint64_t>::iterator lru_pos;
  };
  std::uint64_t capacity_;
  std::uint64_t held_ = 0;
  std::list<std::uint64_t> lru_;  // front = most recently used
  std::unordered_map<std::uint64_t, Entry> entries_;
  mutable std::mutex mutex_;
};

}  // namespace mb::data
