// How a flat buffer of values (the parameters, the optimizer moments) is cut into one part per
// rank: equal parts of ceil(n / ranks) values, the last ones shorter (or empty), so that a
// rank's part depends only on n, the number of ranks and its rank.
#pragma once

#include <algorithm>
#include <cstddef>

namespace mb::dist {

struct Range {
  std::size_t begin = 0, end = 0;
  std::size_t size() const { return end - begin; }
};

class Sharding {
 public:
  Sharding(std::size_t total, int parts) : total_(total), parts_(parts < 1 ? 1 : parts) {
    per_part_ = (total_ + static_cast<std::size_t>(parts_) - 1) / static_cast<std::size_t>(parts_);
  }
  std::size_t total() const { return total_; }
  int parts() const { return parts_; }
  Range part(int index) const {
    const std::size_t b = std::min(total_, per_part_ * static_cast<std::size_t>(index));
    return {b, std::min(total_, b + per_part_)};
  }

 private:
  std::size_t total_;
  int parts_;
  std::size_t per_part_ = 0;
};

}  // namespace mb::dist
