// Bits per byte of a model on a dataset split (megabyte-eval(1)): every document scored
// from an empty context and the total taken over real bytes, in the paper's three ways:
//   plain       windows of T bytes, back to back (stride = T);
//   --stride S  a sliding window: windows start every S bytes and each scores only the bytes
//               the previous window did not, so every byte is scored once with at least T - S
//               bytes of context where the document allows;
//   --strided   the paper's strided inference (section 2.3.3): a second pass whose windows start
//               P/2 bytes later; each byte is scored by the pass in which it falls in the first
//               half of its patch (the first P/2 positions from the first pass, the rest from the
//               second), where the local model has seen the least of the patch and the global
//               model's view is freshest. Combinable with a stride.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/dataset.hpp"
#include "model/model.hpp"

namespace mb::train {

struct EvalResult {
  double loss = 0.0;            // sum of -ln p over the scored bytes
  std::uint64_t bytes = 0;      // bytes scored
  std::uint64_t documents = 0;  // documents scored (wholly or, at the max_bytes limit, in part)
  double bits_per_byte() const;
};

struct DocumentScore {
  std::uint64_t document = 0;
  double loss = 0.0;
  std::uint64_t bytes = 0;
  double bits_per_byte() const;
};

struct EvalOptions {
  std::uint64_t stride = 0;     // 0: T (plain windows)
  bool strided = false;         // the paper's two-pass strided inference (MEGABYTE only)
  std::uint64_t max_bytes = 0;  // stop once at least this many bytes are scored (0: all)
  bool per_document = false;    // fill EvalReport::documents
  bool per_position = false;    // fill EvalReport::positions (by position within a patch)
  bool context_curve = false;   // fill EvalReport::context_curve (by position within the window)
  // Of the windows in their order (strided passes' windows counted one by one), score only
  // those whose index i has i mod share_count == share_index: the ranks of a job split an
  // evaluation and add up their EvalResults (document counts and per-document lists are then
  // each rank's own).
  int share_index = 0;
  int share_count = 1;
  // Called after each batch with the bytes scored so far; returning false stops early.
  std::function<bool(std::uint64_t)> progress;
};

// The bytes a window scored at positions [first, last) of the window: how much context they had.
struct ContextBucket {
  std::uint64_t first = 0, last = 0;
  EvalResult result;
};

// The buckets of the context curve for windows of T bytes: positions 0-1K, 1K-2K, 2K-4K, ...
// doubling up to T (the last one cut at T; a single bucket where T <= 1024).
std::vector<ContextBucket> context_buckets(std::uint64_t T);

struct EvalReport {
  EvalResult total;
  std::vector<DocumentScore> documents;  // with per_document, in document order
  // With per_position: P entries, the scored bytes at each position within their patch (of
  // the window that scored them), the paper's view of where in a patch the loss lies.
  std::vector<EvalResult> positions;
  // With context_curve: context_buckets(T), each with the bytes scored at those positions of
  // their window (whichever pass or stride scored them). Their bytes add up to total.bytes and
  // their losses to total.loss: how much a longer context buys.
  std::vector<ContextBucket> context_curve;
  bool stopped = false;  // progress() asked to stop
};

// Throws mb::Error for a stride outside [1, T], or --strided on a model without patches.
EvalReport evaluate(model::Model& model, const data::SplitReader& split,
                    const EvalOptions& options);

// Plain windows, up to `max_bytes` (0: all): what training reports as validation bpb.
EvalResult evaluate_plain(model::Model& model, const data::SplitReader& split,
                          std::uint64_t max_bytes,
                          const std::function<void(std::uint64_t)>& progress = {});

}  // namespace mb::train
