#include "data/frame_cache.hpp"

namespace mb::data {

FrameBytes FrameCache::get(std::uint64_t key,
                           const std::function<std::vector<std::uint8_t>()>& load) {
  {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(key);
    if (it != entries_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.lru_pos);
      return it->second.bytes;
    }
  }
  auto bytes = std::make_shared<const std::vector<std::uint8_t>>(load());
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  if (it != entries_.end()) return it->second.bytes;  // another thread loaded it meanwhile
  if (bytes->size() > capacity_) return bytes;        // too big to keep; serve it uncached
  lru_.push_front(key);
  entries_.emplace(key, Entry{bytes, lru_.begin()});
  held_ += bytes->size();
  while (held_ > capacity_ && !lru_.empty()) {
    auto victim = entries_.find(lru_.back());
    held_ -= victim->second.bytes->size();
    entries_.erase(victim);
    lru_.pop_back();
  }
  return bytes;
}

std::uint64_t FrameCache::held_bytes() const {
  std::lock_guard lock(mutex_);
  return held_;
}

}  // namespace mb::data
