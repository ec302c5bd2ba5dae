// Evaluation: plain windows (every byte of every document scored once, the loss of the
// windows built by hand, max_bytes, empty documents), sliding windows and the paper's strided
// inference.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.hpp"
#include "error_of.hpp"
#include "model/config.hpp"
#include "model/model.hpp"
#include "train/evaluate.hpp"
#include "training_fixtures.hpp"

using mb::test::Bytes;
using mb::test::contains;
using mb::test::error_of;
using mb::test::random_documents;
using mb::test::SmallDataset;
using mb::test::tiny_model;
using mb::test::tiny_model_config;
using mb::test::total_bytes;

namespace {

// The windows evaluation scores, built by hand: each document cut into windows of T from
// offset 0, the last one padded.
std::vector<std::vector<std::int32_t>> windows_by_hand(const std::vector<Bytes>& docs, int T) {
  std::vector<std::vector<std::int32_t>> out;
  for (const Bytes& d : docs)
    for (std::size_t at = 0; at < d.size(); at += static_cast<std::size_t>(T)) {
      std::vector<std::int32_t> w(static_cast<std::size_t>(T), mb::model::kPadId);
      for (std::size_t i = at; i < std::min(d.size(), at + static_cast<std::size_t>(T)); ++i)
        w[i - at] = d[i];
      out.push_back(std::move(w));
    }
  return out;
}

// The summed loss and count of `windows` [first, last), each run through the model alone.
mb::model::LossSum loss_by_hand(mb::model::Model& m,
                                const std::vector<std::vector<std::int32_t>>& windows,
                                std::size_t first, std::size_t last) {
  mb::model::LossSum sum;
  for (std::size_t i = first; i < last; ++i) {
    const mb::model::LossSum l = m.forward(windows[i].data(), 1, false, 0);
    sum.loss += l.loss;
    sum.count += l.count;
  }
  return sum;
}

}  // namespace

TEST_CASE(
    "evaluate_plain: every byte of every document scored once, the loss of the windows by hand") {
  const std::vector<Bytes> docs = random_documents({1, 3, 16, 17, 40}, 21);
  SmallDataset ds("tp-eval-all", {Bytes(50, 'x')}, docs);
  const auto& split = ds.split("validation");
  REQUIRE(split.documents() == 5);
  const int T = 16;
  int max_batch = 0;
  SUBCASE("one window per pass") { max_batch = 1; }
  SUBCASE("three windows per pass") { max_batch = 3; }
  SUBCASE("all windows in one pass") { max_batch = 16; }
  INFO("max_batch " << max_batch);
  auto model = tiny_model(5, max_batch);
  REQUIRE(model->config().context == T);

  std::vector<std::uint64_t> progress;
  const mb::train::EvalResult r =
      mb::train::evaluate_plain(*model, split, 0, [&](std::uint64_t b) { progress.push_back(b); });
  CHECK(r.bytes == 77);
  CHECK(r.bytes == total_bytes(docs));
  CHECK(r.documents == 5);

  const auto windows = windows_by_hand(docs, T);
  REQUIRE(windows.size() == 8);  // 1 + 1 + 1 + 2 + 3
  const mb::model::LossSum by_hand = loss_by_hand(*model, windows, 0, windows.size());
  CHECK(by_hand.count == 77);
  CHECK(r.loss > 0.0);
  CHECK(r.loss == doctest::Approx(by_hand.loss).epsilon(1e-9));
  CHECK(r.bits_per_byte() == doctest::Approx(by_hand.loss / 77.0 / std::log(2.0)).epsilon(1e-9));
  // A model at initialisation is close to uniform over 256 values: about 8 bits per byte.
  CHECK(r.bits_per_byte() == doctest::Approx(8.0).epsilon(0.05));

  // Progress after each pass, rising to the total.
  REQUIRE_FALSE(progress.empty());
  CHECK(progress.size() == (windows.size() + static_cast<std::size_t>(max_batch) - 1) /
                               static_cast<std::size_t>(max_batch));
  CHECK(std::is_sorted(progress.begin(), progress.end()));
  CHECK(progress.back() == 77);
}

TEST_CASE("evaluate_plain: max_bytes stops after the window that reaches it") {
  // Windows, in order, with the bytes queued after each: doc 0 [1] -> 1, doc 1 [3] -> 4,
  // doc 2 [16] -> 20, doc 3 [16] -> 36, [1] -> 37, doc 4 [16] -> 53, [16] -> 69, [8] -> 77.
  // Scoring stops before the first window once `max_bytes` are queued, even inside a document.
  const std::vector<Bytes> docs = random_documents({1, 3, 16, 17, 40}, 22);
  SmallDataset ds("tp-eval-max", docs);
  const auto& split = ds.split("train");
  auto model = tiny_model(6, 3);
  const auto windows = windows_by_hand(docs, 16);

  struct Case {
    std::uint64_t max_bytes, bytes, documents;
    std::size_t windows;
  };
  for (const Case c : {Case{20, 20, 3, 3},  // doc 2 ends exactly at 20: doc 3 not started
                       Case{21, 36, 4, 4},  // doc 3 crosses 21 in its first window: scored in part
                       Case{4, 4, 2, 2},    // reached at the end of doc 1
                       Case{5, 20, 3, 3},   // doc 2's one window crosses 5
                       Case{1, 1, 1, 1},    // the first byte is enough
                       Case{37, 37, 4, 5},  // doc 3 whole
                       Case{54, 69, 5, 7},  // doc 4 in part
                       Case{77, 77, 5, 8},  // everything, exactly
                       Case{1000, 77, 5, 8}}) {  // more than there is
    INFO("max_bytes " << c.max_bytes);
    const mb::train::EvalResult r = mb::train::evaluate_plain(*model, split, c.max_bytes);
    CHECK(r.bytes == c.bytes);
    CHECK(r.documents == c.documents);
    CHECK(r.bytes >=
          std::min<std::uint64_t>(c.max_bytes, 77));  // at least max_bytes, where there are
    const mb::model::LossSum by_hand = loss_by_hand(*model, windows, 0, c.windows);
    CHECK(static_cast<std::uint64_t>(by_hand.count) == c.bytes);
    CHECK(r.loss == doctest::Approx(by_hand.loss).epsilon(1e-9));
  }
}

TEST_CASE("evaluate_plain: empty documents are skipped, an empty split scores nothing") {
  auto model = tiny_model(7, 2);
  SUBCASE("empty documents among others") {
    const std::vector<Bytes> docs = random_documents({0, 5, 0, 0, 20, 0}, 23);
    SmallDataset ds("tp-eval-empty-docs", docs);
    const mb::train::EvalResult r = mb::train::evaluate_plain(*model, ds.split("train"), 0);
    CHECK(r.bytes == 25);
    CHECK(r.documents == 2);
    CHECK(
        r.loss ==
        doctest::Approx(loss_by_hand(*model, windows_by_hand(docs, 16), 0, 3).loss).epsilon(1e-9));
  }
  SUBCASE("a split without documents") {
    SmallDataset ds("tp-eval-empty-split", random_documents({30}, 24));
    const auto& split = ds.split("validation");
    REQUIRE(split.documents() == 0);
    int calls = 0;
    const mb::train::EvalResult r =
        mb::train::evaluate_plain(*model, split, 0, [&](std::uint64_t) { ++calls; });
    CHECK(r.bytes == 0);
    CHECK(r.documents == 0);
    CHECK(r.loss == 0.0);
    CHECK(r.bits_per_byte() == 0.0);
    CHECK(calls == 0);
    const mb::train::EvalResult limited = mb::train::evaluate_plain(*model, split, 100);
    CHECK(limited.bytes == 0);
    CHECK(limited.bits_per_byte() == 0.0);
  }
  SUBCASE("a split of empty documents only") {
    SmallDataset ds("tp-eval-only-empty", random_documents({0, 0}, 25));
    const mb::train::EvalResult r = mb::train::evaluate_plain(*model, ds.split("train"), 0);
    CHECK(r.bytes == 0);
    CHECK(r.documents == 0);
    CHECK(r.bits_per_byte() == 0.0);
  }
}

// ---- evaluate(): sliding windows and the paper's strided inference -------------------------

namespace {

// Per-position losses of one window read from `doc` at `start` (padded to T), by one forward.
std::vector<float> window_losses(mb::model::Model& m, const Bytes& doc, std::size_t start) {
  const int T = m.config().context;
  std::vector<std::int32_t> w(static_cast<std::size_t>(T), mb::model::kPadId);
  for (std::size_t i = start; i < std::min(doc.size(), start + static_cast<std::size_t>(T)); ++i)
    w[i - start] = doc[i];
  m.forward(w.data(), 1, false, 0);
  return std::vector<float>(m.position_losses(), m.position_losses() + T);
}

}  // namespace

TEST_CASE("evaluate: stride T is plain; every stride scores every byte exactly once") {
  const std::vector<Bytes> docs = random_documents({1, 3, 16, 17, 40}, 31);
  SmallDataset ds("tp-eval-stride", {Bytes(50, 'x')}, docs);
  const auto& split = ds.split("validation");
  auto model = tiny_model(6, 3);
  const mb::train::EvalResult plain = mb::train::evaluate_plain(*model, split, 0);
  mb::train::EvalOptions opt;
  opt.per_document = true;
  opt.per_position = true;
  for (std::uint64_t stride : {0u, 16u, 1u, 5u, 8u, 15u}) {
    INFO("stride " << stride);
    opt.stride = stride;
    const mb::train::EvalReport r = mb::train::evaluate(*model, split, opt);
    CHECK(r.total.bytes == 77);
    CHECK(r.total.documents == 5);
    REQUIRE(r.documents.size() == 5);
    double sum = 0.0;
    for (std::size_t d = 0; d < 5; ++d) {
      CHECK(r.documents[d].document == d);
      CHECK(r.documents[d].bytes == docs[d].size());
      sum += r.documents[d].loss;
    }
    CHECK(sum == doctest::Approx(r.total.loss).epsilon(1e-12));
    // By position within the patch (P = 4): the parts add up to the whole.
    REQUIRE(r.positions.size() == 4);
    double by_position = 0.0;
    std::uint64_t position_bytes = 0;
    for (const auto& p : r.positions) {
      by_position += p.loss;
      position_bytes += p.bytes;
    }
    CHECK(position_bytes == 77);
    CHECK(by_position == doctest::Approx(r.total.loss).epsilon(1e-12));
    if (stride == 0 || stride == 16) {
      CHECK(r.total.loss == plain.loss);  // the same windows
      // Plain windows: a window's position i is in patch position i mod 4; the documents of
      // 1, 3, 16, 17 (16 + 1) and 40 (16 + 16 + 8) bytes put 1+1+4+5+10 = 21 bytes at position
      // 0, 0+1+4+4+10 = 19 at 1, 19 at 2 and 0+0+4+4+10 = 18 at 3.
      CHECK(r.positions[0].bytes == 21);
      CHECK(r.positions[1].bytes == 19);
      CHECK(r.positions[2].bytes == 19);
      CHECK(r.positions[3].bytes == 18);
    }
  }
  opt.stride = 17;
  CHECK(contains(error_of([&] { mb::train::evaluate(*model, split, opt); }),
                 "longer than the model's context"));
}

TEST_CASE(
    "evaluate: a sliding window scores each byte once, with the window that gives it most "
    "context") {
  const std::vector<Bytes> docs = random_documents({40}, 32);
  SmallDataset ds("tp-eval-slide", {Bytes(50, 'x')}, docs);
  auto model = tiny_model(7, 2);
  mb::train::EvalOptions opt;
  opt.stride = 5;
  const mb::train::EvalReport r = mb::train::evaluate(*model, ds.split("validation"), opt);
  // T = 16, S = 5: windows at 0, 5, 10, 15, 20, 25 (the last reaches the end, 40). The first
  // scores bytes 0..15, each later one the bytes past the previous window's end.
  double by_hand = 0.0;
  std::size_t scored_to = 0, count = 0;
  for (std::size_t s = 0; scored_to < 40; s += 5) {
    const auto l = window_losses(*model, docs[0], s);
    const std::size_t e = std::min<std::size_t>(s + 16, 40);
    for (std::size_t t = scored_to; t < e; ++t, ++count) by_hand += l[t - s];
    scored_to = e;
  }
  CHECK(count == 40);
  CHECK(r.total.bytes == 40);
  CHECK(r.total.loss == doctest::Approx(by_hand).epsilon(1e-6));
  // A different stride is a different set of contexts, hence another loss.
  opt.stride = 16;
  CHECK(mb::train::evaluate(*model, ds.split("validation"), opt).total.loss !=
        doctest::Approx(by_hand).epsilon(1e-6));
}

TEST_CASE(
    "evaluate: strided inference keeps the first half of every patch from each of two passes") {
  const std::vector<Bytes> docs = random_documents({40, 3}, 33);
  SmallDataset ds("tp-eval-strided", {Bytes(50, 'x')}, docs);
  auto model = tiny_model(8, 2);
  const int P = model->config().patch_size;
  REQUIRE(P == 4);
  for (std::uint64_t stride : {16u, 6u}) {
    INFO("stride " << stride);
    mb::train::EvalOptions opt;
    opt.strided = true;
    opt.stride = stride;
    const mb::train::EvalReport r = mb::train::evaluate(*model, ds.split("validation"), opt);
    // By hand: the first pass reads windows at s, the second at s + P/2. Byte t of [a, e) is
    // at position t - s of the first: it is kept there if (t - s) mod P < P/2, otherwise it
    // is at position t - s - P/2 < P/2 (mod P) of the second pass and kept there.
    double by_hand = 0.0;
    std::size_t count = 0;
    for (const Bytes& doc : docs) {
      std::size_t scored_to = 0;
      for (std::size_t s = 0; scored_to < doc.size(); s += stride) {
        const std::size_t e = std::min(s + 16, doc.size());
        const auto first = window_losses(*model, doc, s);
        const auto second =
            s + 2 < doc.size() ? window_losses(*model, doc, s + 2) : std::vector<float>();
        for (std::size_t t = scored_to; t < e; ++t, ++count)
          by_hand += (t - s) % 4 < 2 ? first[t - s] : second.at(t - s - 2);
        scored_to = e;
      }
    }
    CHECK(count == 43);
    CHECK(r.total.bytes == 43);
    INFO("evaluate " << r.total.loss << " by hand " << by_hand);
    CHECK(r.total.loss == doctest::Approx(by_hand).epsilon(1e-6));
  }
  // The byte transformer has no patches.
  mb::model::ModelConfig c;
  c.kind = mb::model::ModelKind::transformer;
  c.context = 16;
  c.patch_size = 1;
  c.global = {8, 1, 2};
  auto transformer = tiny_model(9, 2, c);
  mb::train::EvalOptions opt;
  opt.strided = true;
  CHECK(contains(error_of([&] { mb::train::evaluate(*transformer, ds.split("validation"), opt); }),
                 "needs a model with patches"));
}

TEST_CASE("context curve: buckets double from 1K up to T") {
  using mb::train::context_buckets;
  const auto b = context_buckets(5000);
  REQUIRE(b.size() == 4);
  CHECK(b[0].first == 0);
  CHECK(b[0].last == 1024);
  CHECK(b[1].first == 1024);
  CHECK(b[1].last == 2048);
  CHECK(b[2].last == 4096);
  CHECK(b[3].first == 4096);
  CHECK(b[3].last == 5000);  // cut at T
  REQUIRE(context_buckets(512).size() == 1);
  CHECK(context_buckets(512)[0].last == 512);
  CHECK(context_buckets(1024).size() == 1);
  CHECK(context_buckets(4096).size() == 3);
}

TEST_CASE("context curve: the buckets add up to the total with every method, by window position") {
  // T = 4096 (buckets 0-1K, 1K-2K, 2K-4K), documents shorter and longer than a window.
  mb::model::ModelConfig c = tiny_model_config();
  c.context = 4096;
  c.patch_size = 8;
  const std::vector<Bytes> docs = random_documents({700, 1500, 5000}, 41);
  SmallDataset ds("tp-eval-curve", {Bytes(50, 'x')}, docs);
  auto model = tiny_model(9, 2, c);
  const std::uint64_t all = 700 + 1500 + 5000;
  struct Method {
    std::uint64_t stride;
    bool strided;
  };
  for (const Method m :
       {Method{0, false}, Method{1000, false}, Method{0, true}, Method{3000, true}}) {
    INFO("stride " << m.stride << (m.strided ? ", strided" : ""));
    mb::train::EvalOptions opt;
    opt.stride = m.stride;
    opt.strided = m.strided;
    opt.context_curve = true;
    const mb::train::EvalReport r = mb::train::evaluate(*model, ds.split("validation"), opt);
    REQUIRE(r.context_curve.size() == 3);
    std::uint64_t bytes = 0;
    double loss = 0.0;
    for (const auto& b : r.context_curve) {
      bytes += b.result.bytes;
      loss += b.result.loss;
    }
    CHECK(r.total.bytes == all);
    CHECK(bytes == all);
    CHECK(loss == doctest::Approx(r.total.loss).epsilon(1e-12));
    if (m.stride == 0 && !m.strided) {
      // Plain windows at 0 and 4096: 700 + 1500 + 5000 bytes put 700 + 1024 + 1024 + 904
      // (the second window of the long document: bytes 4096..5000) = 3652 in the first
      // bucket, 476 + 1024 = 1500 in the second, 2048 in the third.
      CHECK(r.context_curve[0].result.bytes == 700 + 1024 + 1024 + 904);
      CHECK(r.context_curve[1].result.bytes == 476 + 1024);
      CHECK(r.context_curve[2].result.bytes == 2048);
    }
  }
}
