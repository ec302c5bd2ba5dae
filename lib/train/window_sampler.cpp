#include "train/window_sampler.hpp"

#include <algorithm>
#include <vector>

#include "core/error.hpp"
#include "model/model.hpp"

namespace mb::train {

namespace {

std::uint64_t mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A uniform integer in [0, n) from 64 random bits (Lemire's multiply-shift; the bias is at
// most n / 2^64).
std::uint64_t below(std::uint64_t bits, std::uint64_t n) {
  __extension__ using u128 = unsigned __int128;  // GCC and Clang; -Wpedantic wants the marker
  return static_cast<std::uint64_t>((static_cast<u128>(bits) * n) >> 64);
}

}  // namespace

WindowSampler::WindowSampler(const data::SplitReader& split, int context, std::uint64_t seed)
    : split_(split), context_(context), seed_(seed) {
  if (split.bytes() == 0)
    throw Error("split '" + split.name() + "'", "holds no bytes to train on",
                "prepare the dataset from non-empty files");
  starts_.resize(split.documents());
  std::uint64_t at = 0;
  for (std::uint64_t d = 0; d < split.documents(); ++d) {
    starts_[d] = at;
    at += split.document_size(d);
  }
  windows_per_epoch_ = (split.bytes() + context - 1) / context;
}

Window WindowSampler::window_at(SamplerPosition p) const {
  const std::uint64_t key = mix(mix(seed_ ^ 0x57494E444F57ull) + p.epoch);
  const std::uint64_t r1 = mix(key + 2 * p.index + 1), r2 = mix(key + 2 * p.index + 2);
  // A byte uniformly over the split picks its document: documents weighted by size, and
  // empty documents never chosen.
  const std::uint64_t byte = below(r1, split_.bytes());
  const std::uint64_t doc =
      static_cast<std::uint64_t>(std::upper_bound(starts_.begin(), starts_.end(), byte) -
                                 starts_.begin()) -
      1;
  const std::uint64_t size = split_.document_size(doc);
  const std::uint64_t T = static_cast<std::uint64_t>(context_);
  Window w;
  w.document = doc;
  w.length = std::min(size, T);
  w.offset = size > T ? below(r2, size - T + 1) : 0;
  return w;
}

Window WindowSampler::next() {
  const Window w = window_at(position_);
  if (++position_.index == windows_per_epoch_) {
    position_.index = 0;
    ++position_.epoch;
  }
  return w;
}

void WindowSampler::read(const Window& w, std::int32_t* ids) const {
  std::vector<std::uint8_t> bytes(w.length);
  split_.read(w.document, w.offset, bytes);
  for (std::uint64_t i = 0; i < w.length; ++i) ids[i] = bytes[i];
  std::fill(ids + w.length, ids + context_, model::kPadId);
}

}  // namespace mb::train
