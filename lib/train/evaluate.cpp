#include "train/evaluate.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.hpp"

namespace mb::train {

namespace {

// One window of one pass: the model reads T ids from `start`, and the positions i of the
// window in [lo, hi) with i mod P < keep are scored (keep = P scores them all).
struct Window {
  std::uint64_t document = 0;
  std::uint64_t start = 0;
  std::uint64_t length = 0;  // real bytes read (the rest is padding)
  std::uint64_t lo = 0, hi = 0;
  int keep = 0;
};

class Scorer {
 public:
  Scorer(model::Model& model, const data::SplitReader& split, EvalReport& report, bool per_doc,
         const std::function<bool(std::uint64_t)>& progress)
      : model_(model),
        split_(split),
        report_(report),
        per_doc_(per_doc),
        progress_(progress),
        T_(model.config().context),
        P_(model.config().patch_size),
        ids_(static_cast<std::size_t>(model.max_batch()) * T_),
        bytes_(T_) {}

  // Of the windows add() is given, queue only every count-th from the index-th.
  void set_share(int index, int count) { share_index_ = index, share_count_ = count; }

  void add(const Window& w) {
    if (share_count_ > 1 && next_window_++ % static_cast<std::uint64_t>(share_count_) !=
                                static_cast<std::uint64_t>(share_index_))
      return;
    split_.read(w.document, w.start, std::span(bytes_.data(), w.length));
    std::int32_t* row = ids_.data() + queue_.size() * T_;
    for (std::uint64_t i = 0; i < w.length; ++i) row[i] = bytes_[i];
    std::fill(row + w.length, row + T_, model::kPadId);
    queue_.push_back(w);
    if (static_cast<int>(queue_.size()) == model_.max_batch()) flush();
  }

  // The context-curve bucket of window position i.
  std::size_t bucket_of(std::uint64_t i) const {
    std::size_t k = 0;
    while (report_.context_curve[k].last <= i) ++k;
    return k;
  }

  void flush() {
    if (queue_.empty()) return;
    model_.forward(ids_.data(), static_cast<int>(queue_.size()), false, 0);
    const float* losses = model_.position_losses();
    for (std::size_t b = 0; b < queue_.size(); ++b) {
      const Window& w = queue_[b];
      double loss = 0.0;
      std::uint64_t count = 0;
      for (std::uint64_t i = w.lo; i < w.hi; ++i)
        if (static_cast<int>(i % P_) < w.keep) {
          loss += losses[b * T_ + i];
          ++count;
          if (!report_.positions.empty()) {
            report_.positions[i % P_].loss += losses[b * T_ + i];
            ++report_.positions[i % P_].bytes;
          }
          if (!report_.context_curve.empty()) {
            EvalResult& bucket = report_.context_curve[bucket_of(i)].result;
            bucket.loss += losses[b * T_ + i];
            ++bucket.bytes;
          }
        }
      report_.total.loss += loss;
      report_.total.bytes += count;
      if (per_doc_) {
        if (report_.documents.empty() || report_.documents.back().document != w.document)
          report_.documents.push_back({w.document, 0.0, 0});
        report_.documents.back().loss += loss;
        report_.documents.back().bytes += count;
      }
    }
    queue_.clear();
    if (progress_ && !progress_(report_.total.bytes)) report_.stopped = true;
  }

 private:
  model::Model& model_;
  const data::SplitReader& split_;
  EvalReport& report_;
  bool per_doc_;
  const std::function<bool(std::uint64_t)>& progress_;  // after every forward pass
  int T_, P_;
  std::vector<std::int32_t> ids_;
  std::vector<std::uint8_t> bytes_;
  std::vector<Window> queue_;
  int share_index_ = 0, share_count_ = 1;  // EvalOptions' share of the windows
  std::uint64_t next_window_ = 0;
};

}  // namespace

std::vector<ContextBucket> context_buckets(std::uint64_t T) {
  std::vector<ContextBucket> buckets;
  constexpr std::uint64_t kFirst = 1024;
  for (std::uint64_t first = 0, last = kFirst; first < T; first = last, last *= 2)
    buckets.push_back({first, std::min(last, T), {}});
  return buckets;
}

double EvalResult::bits_per_byte() const {
  return bytes == 0 ? 0.0 : loss / static_cast<double>(bytes) / std::log(2.0);
}

double DocumentScore::bits_per_byte() const {
  return bytes == 0 ? 0.0 : loss / static_cast<double>(bytes) / std::log(2.0);
}

EvalReport evaluate(model::Model& model, const data::SplitReader& split, const EvalOptions& opt) {
  const std::uint64_t T = static_cast<std::uint64_t>(model.config().context);
  const int P = model.config().patch_size;
  const std::uint64_t stride = opt.stride == 0 ? T : opt.stride;
  if (stride > T)
    throw Error("--stride " + std::to_string(stride),
                "is longer than the model's context T = " + std::to_string(T),
                "use a stride between 1 and " + std::to_string(T) + " (T: plain windows)");
  if (opt.strided && P < 2)
    throw Error("--strided",
                "needs a model with patches (P >= 2); this one has P = " + std::to_string(P),
                "drop --strided for the byte transformer");
  // The first pass keeps the first h positions of each patch, the second (started h bytes
  // later) the other P - h; without --strided one pass keeps everything.
  const int h = opt.strided ? P / 2 : P;

  EvalReport report;
  if (opt.per_position) report.positions.resize(static_cast<std::size_t>(P));
  if (opt.context_curve) report.context_curve = context_buckets(T);
  Scorer scorer(model, split, report, opt.per_document, opt.progress);
  scorer.set_share(opt.share_index, opt.share_count);
  std::uint64_t planned = 0;  // bytes scored by the windows queued so far
  for (std::uint64_t doc = 0; doc < split.documents(); ++doc) {
    if (opt.max_bytes && planned >= opt.max_bytes) break;
    const std::uint64_t size = split.document_size(doc);
    if (size == 0) continue;
    ++report.total.documents;
    std::uint64_t scored_to = 0;  // bytes [0, scored_to) of the document are scored
    for (std::uint64_t s = 0; scored_to < size; s += stride) {
      if (opt.max_bytes && planned >= opt.max_bytes) break;
      const std::uint64_t e = std::min(s + T, size);
      const std::uint64_t a = scored_to;  // score [a, e): what earlier windows did not
      scorer.add({doc, s, e - s, a - s, e - s, h});
      if (opt.strided && s + h < size) {
        const std::uint64_t sb = s + h, eb = std::min(sb + T, size);
        const std::uint64_t lo = a > sb ? a - sb : 0, hi = e - sb;
        if (lo < hi) scorer.add({doc, sb, eb - sb, lo, hi, P - h});
      }
      planned += e - a;
      scored_to = e;
      if (report.stopped) return report;
    }
  }
  scorer.flush();
  return report;
}

EvalResult evaluate_plain(model::Model& model, const data::SplitReader& split,
                          std::uint64_t max_bytes,
                          const std::function<void(std::uint64_t)>& progress) {
  EvalOptions opt;
  opt.max_bytes = max_bytes;
  if (progress)
    opt.progress = [&](std::uint64_t b) {
      progress(b);
      return true;
    };
  return evaluate(model, split, opt).total;
}

}  // namespace mb::train
