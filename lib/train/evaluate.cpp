#include "train/evaluate.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace mb::train {

double EvalResult::bits_per_byte() const {
  return bytes == 0 ? 0.0 : loss / static_cast<double>(bytes) / std::log(2.0);
}

EvalResult evaluate_plain(model::Model& model, const data::SplitReader& split,
                          std::uint64_t max_bytes,
                          const std::function<void(std::uint64_t)>& progress) {
  const int T = model.config().context, B = model.max_batch();
  std::vector<std::int32_t> ids(static_cast<std::size_t>(B) * T);
  std::vector<std::uint8_t> bytes(T);
  EvalResult result;
  int filled = 0;
  auto flush = [&] {
    if (filled == 0) return;
    const model::LossSum l = model.forward(ids.data(), filled, false, 0);
    result.loss += l.loss;
    result.bytes += static_cast<std::uint64_t>(l.count);
    filled = 0;
    if (progress) progress(result.bytes);
  };
  std::uint64_t queued = 0;   // bytes in windows read so far
  for (std::uint64_t doc = 0; doc < split.documents(); ++doc) {
    if (max_bytes && queued >= max_bytes) break;
    const std::uint64_t size = split.document_size(doc);
    if (size == 0) continue;
    ++result.documents;
    for (std::uint64_t at = 0; at < size; at += T) {
      if (max_bytes && queued >= max_bytes) break;
      const std::uint64_t n = std::min<std::uint64_t>(T, size - at);
      split.read(doc, at, std::span(bytes.data(), n));
      std::int32_t* w = ids.data() + static_cast<std::size_t>(filled) * T;
      for (std::uint64_t i = 0; i < n; ++i) w[i] = bytes[i];
      std::fill(w + n, w + T, model::kPadId);
      queued += n;
      if (++filled == B) flush();
    }
  }
  flush();
  return result;
}

}  // namespace mb::train
