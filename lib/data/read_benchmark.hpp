// How fast a dataset serves the training sampler's access pattern: random windows of T
// bytes from random documents of a split, on several threads at once.
#pragma once

#include <cstdint>

#include "data/dataset.hpp"

namespace mb::data {

struct ReadBenchmarkResult {
  std::uint64_t windows = 0;
  std::uint64_t bytes = 0;
  double seconds = 0;
  unsigned threads = 0;
  double windows_per_second() const {
    return seconds > 0 ? static_cast<double>(windows) / seconds : 0;
  }
};

// Reads windows of `window` bytes (shorter documents are read whole) for about `seconds`
// on `threads` threads, each drawing documents in proportion to their size.
ReadBenchmarkResult benchmark_random_windows(const SplitReader& split, std::uint64_t window,
                                             double seconds, unsigned threads, std::uint64_t seed);

}  // namespace mb::data
