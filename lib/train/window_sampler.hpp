// Training windows (megabyte-train(1), TRAINING, Windows): a window is T bytes of one document of the train
// split, a shorter document padded with the pad id. The i-th window of epoch e is a pure
// function of (seed, e, i): a document drawn with probability proportional to its size, then
// a start offset drawn uniformly among those that fit. So the sampler's whole state is
// (epoch, index), a checkpoint stores two integers, and a resumed run draws exactly the windows
// the uninterrupted run would have drawn.
#pragma once

#include <cstdint>
#include <vector>

#include "data/dataset.hpp"

namespace mb::train {

struct Window {
  std::uint64_t document = 0;
  std::uint64_t offset = 0;  // first byte
  std::uint64_t length = 0;  // real bytes (< T only for a document shorter than T)
};

struct SamplerPosition {
  std::uint64_t epoch = 0;
  std::uint64_t index = 0;  // next window within the epoch
  bool operator==(const SamplerPosition&) const = default;
};

class WindowSampler {
 public:
  // Throws mb::Error if the split holds no bytes.
  WindowSampler(const data::SplitReader& split, int context, std::uint64_t seed);

  // An epoch is ceil(bytes / T) windows: about one pass over the split's bytes.
  std::uint64_t windows_per_epoch() const { return windows_per_epoch_; }

  // The window at `position` (no state change).
  Window window_at(SamplerPosition position) const;
  // The next window; advances the position (into the next epoch after the last one).
  Window next();

  // ids[T]: the window's bytes, then kPadId up to T.
  void read(const Window& w, std::int32_t* ids) const;

  SamplerPosition position() const { return position_; }
  void set_position(SamplerPosition p) { position_ = p; }

 private:
  const data::SplitReader& split_;
  int context_;
  std::uint64_t seed_;
  std::vector<std::uint64_t> starts_;  // first byte of each document in the split's concatenation
  std::uint64_t windows_per_epoch_ = 0;
  SamplerPosition position_;
};

}  // namespace mb::train
