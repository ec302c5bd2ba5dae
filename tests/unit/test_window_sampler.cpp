// The window sampler: windows inside their document, padding, determinism, exact resume,
// epochs, size-weighted draws, and the splits it refuses.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "data/dataset.hpp"
#include "error_of.hpp"
#include "train/window_sampler.hpp"
#include "training_fixtures.hpp"

using mb::test::Bytes;
using mb::test::contains;
using mb::test::error_of;
using mb::test::random_documents;
using mb::test::SmallDataset;
using mb::test::total_bytes;

namespace {

bool same_window(const mb::train::Window& a, const mb::train::Window& b) {
  return a.document == b.document && a.offset == b.offset && a.length == b.length;
}

std::vector<mb::train::Window> draw(mb::train::WindowSampler& s, int n) {
  std::vector<mb::train::Window> out;
  for (int i = 0; i < n; ++i) out.push_back(s.next());
  return out;
}

bool same_windows(const std::vector<mb::train::Window>& a,
                  const std::vector<mb::train::Window>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), same_window);
}

}  // namespace

TEST_CASE("WindowSampler: every window lies inside its document and is min(size, T) long") {
  // Empty documents at the start, in the middle and at the end; documents shorter than T, of
  // exactly T, just over T and much longer.
  const std::vector<std::size_t> sizes = {0, 5, 16, 17, 0, 100, 1000, 3, 0, 0};
  SmallDataset ds("tp-sampler-inside", random_documents(sizes, 1));
  const auto& split = ds.split("train");
  const int T = 16;
  mb::train::WindowSampler s(split, T, 7);
  std::map<std::uint64_t, std::uint64_t> max_offset;
  std::map<std::uint64_t, int> offsets_of_17;
  for (int i = 0; i < 20000; ++i) {
    const mb::train::Window w = s.next();
    REQUIRE(w.document < sizes.size());
    const std::uint64_t size = sizes[w.document];
    INFO("draw " << i << ": document " << w.document << " (" << size << " bytes), offset "
                 << w.offset << ", length " << w.length);
    REQUIRE(size > 0);
    REQUIRE(w.length == std::min<std::uint64_t>(size, T));
    REQUIRE(w.offset + w.length <= size);
    max_offset[w.document] = std::max(max_offset[w.document], w.offset);
    if (size == 17) ++offsets_of_17[w.offset];
  }
  // Every offset that fits is drawn, the last one (size - T) included.
  CHECK(max_offset[1] == 0);
  CHECK(max_offset[2] == 0);
  CHECK(offsets_of_17.size() == 2);
  CHECK(offsets_of_17[0] > 0);
  CHECK(offsets_of_17[1] > 0);
  CHECK(max_offset[5] == 100 - T);
  CHECK(max_offset[6] == 1000 - T);
}

TEST_CASE("WindowSampler: read() gives the window's bytes, then the pad id up to T") {
  SmallDataset ds("tp-sampler-read", random_documents({5, 40}, 2));
  const auto& split = ds.split("train");
  const int T = 16;
  mb::train::WindowSampler s(split, T, 3);
  int short_seen = 0, long_seen = 0;
  for (int i = 0; i < 200; ++i) {
    const mb::train::Window w = s.next();
    std::vector<std::int32_t> ids(T + 1, -7);  // one sentinel past the end
    s.read(w, ids.data());
    CHECK(ids[T] == -7);
    const Bytes& doc = ds.train[w.document];
    std::vector<std::int32_t> expected(T, mb::model::kPadId);
    for (std::uint64_t k = 0; k < w.length; ++k) expected[k] = doc[w.offset + k];
    ids.resize(T);
    CHECK(ids == expected);
    (w.document == 0 ? short_seen : long_seen)++;
  }
  REQUIRE(short_seen > 0);
  REQUIRE(long_seen > 0);
  // The short document exactly: its 5 bytes, then 11 pads (256, not a byte value).
  mb::train::Window w{0, 0, 5};
  std::vector<std::int32_t> ids(T);
  s.read(w, ids.data());
  for (int k = 0; k < 5; ++k) CHECK(ids[k] == ds.train[0][k]);
  for (int k = 5; k < T; ++k) CHECK(ids[k] == 256);
  CHECK(mb::model::kPadId == 256);
}

TEST_CASE("WindowSampler: the same seed draws the same windows, another seed other windows") {
  SmallDataset ds("tp-sampler-seed", random_documents({300, 17, 1000, 64, 9, 500}, 3));
  const auto& split = ds.split("train");
  mb::train::WindowSampler a(split, 16, 42), b(split, 16, 42), c(split, 16, 43);
  const auto wa = draw(a, 300), wb = draw(b, 300), wc = draw(c, 300);
  CHECK(same_windows(wa, wb));
  CHECK_FALSE(same_windows(wa, wc));
  int differ = 0;
  for (std::size_t i = 0; i < wa.size(); ++i) differ += same_window(wa[i], wc[i]) ? 0 : 1;
  CHECK(differ > 200);  // not one window off: another sequence
  CHECK(a.position() == b.position());
}

TEST_CASE(
    "WindowSampler: window_at(position) is what next() returns there, and set_position resumes") {
  SmallDataset ds("tp-sampler-resume", random_documents({300, 17, 1000, 64, 9, 500}, 4));
  const auto& split = ds.split("train");
  mb::train::WindowSampler s(split, 16, 5);
  const std::uint64_t per_epoch = s.windows_per_epoch();
  for (int i = 0; i < 300; ++i) {
    const mb::train::SamplerPosition p = s.position();
    const mb::train::Window at = s.window_at(p);
    CHECK(s.position() == p);  // window_at does not move the sampler
    CHECK(same_window(at, s.next()));
  }
  CHECK(s.position().epoch == 300 / per_epoch);

  // A run interrupted after 137 windows, its position saved, resumed in a fresh sampler.
  mb::train::WindowSampler run(split, 16, 5);
  draw(run, 137);
  const mb::train::SamplerPosition saved = run.position();
  const auto continuation = draw(run, 250);
  mb::train::WindowSampler resumed(split, 16, 5);
  resumed.set_position(saved);
  CHECK(resumed.position() == saved);
  CHECK(same_windows(draw(resumed, 250), continuation));
  CHECK(resumed.position() == run.position());
  // ... and the fresh sampler does not reproduce it without the position.
  mb::train::WindowSampler fresh(split, 16, 5);
  CHECK_FALSE(same_windows(draw(fresh, 250), continuation));
  // Setting the position back replays the same windows in the same sampler.
  run.set_position(saved);
  CHECK(same_windows(draw(run, 250), continuation));
}

TEST_CASE(
    "WindowSampler: an epoch is ceil(bytes / T) windows, then the position wraps into epoch 1") {
  std::vector<std::size_t> sizes;
  std::uint64_t expected_per_epoch = 0;
  SUBCASE("bytes not a multiple of T") {
    sizes = {300, 17, 1000, 64, 9, 500};  // 1890 bytes: 118.125 windows of 16
    expected_per_epoch = 119;
  }
  SUBCASE("bytes a multiple of T") {
    sizes = {100, 60, 0, 160};  // 320 bytes: 20 windows of 16
    expected_per_epoch = 20;
  }
  SUBCASE("fewer bytes than T") {
    sizes = {3, 0, 4};
    expected_per_epoch = 1;
  }
  SmallDataset ds("tp-sampler-epoch", random_documents(sizes, 5));
  const auto& split = ds.split("train");
  REQUIRE(split.bytes() == total_bytes(ds.train));
  mb::train::WindowSampler s(split, 16, 9);
  REQUIRE(s.windows_per_epoch() == expected_per_epoch);
  CHECK(s.position() == mb::train::SamplerPosition{0, 0});
  for (std::uint64_t i = 0; i + 1 < expected_per_epoch; ++i) s.next();
  CHECK(s.position() == mb::train::SamplerPosition{0, expected_per_epoch - 1});
  s.next();
  CHECK(s.position() == mb::train::SamplerPosition{1, 0});
  for (std::uint64_t i = 0; i < expected_per_epoch; ++i) s.next();
  CHECK(s.position() == mb::train::SamplerPosition{2, 0});

  // Epoch 1 draws other windows than epoch 0 (checked where there is room for them to differ).
  if (expected_per_epoch > 1) {
    std::vector<mb::train::Window> e0, e1;
    for (std::uint64_t i = 0; i < expected_per_epoch; ++i) {
      e0.push_back(s.window_at({0, i}));
      e1.push_back(s.window_at({1, i}));
    }
    CHECK_FALSE(same_windows(e0, e1));
  }
}

TEST_CASE("WindowSampler: documents are drawn in proportion to their size") {
  SmallDataset ds("tp-sampler-weights", random_documents({1000, 9000}, 6));
  mb::train::WindowSampler s(ds.split("train"), 100, 11);
  CHECK(s.windows_per_epoch() == 100);
  int big = 0;
  const int draws = 20000;
  for (int i = 0; i < draws; ++i) big += s.next().document == 1 ? 1 : 0;
  const double share = static_cast<double>(big) / draws;
  INFO("the 9,000-byte document was drawn " << big << " times of " << draws);
  CHECK(share > 0.88);
  CHECK(share < 0.92);
}

TEST_CASE("WindowSampler: empty documents are never drawn") {
  // Empty documents everywhere: first, between, several in a row, last.
  const std::vector<std::size_t> sizes = {0, 0, 7, 0, 1, 0, 0, 0, 30, 0};
  SmallDataset ds("tp-sampler-empty-docs", random_documents(sizes, 7));
  mb::train::WindowSampler s(ds.split("train"), 8, 13);
  std::map<std::uint64_t, int> count;
  for (int i = 0; i < 5000; ++i) ++count[s.next().document];
  for (const auto& entry : count) {
    // Plain variables, not a structured binding: INFO captures them in a lambda (clang 14).
    const std::uint64_t doc = entry.first;
    const int n = entry.second;
    INFO("document " << doc << " drawn " << n << " times");
    CHECK(sizes.at(doc) > 0);
  }
  CHECK(count.size() == 3);  // and every non-empty one is
}

TEST_CASE("WindowSampler: a split that holds no bytes is refused") {
  SUBCASE("no documents at all") {
    SmallDataset ds("tp-sampler-nothing", {}, random_documents({10}, 8));
    REQUIRE(ds.split("train").documents() == 0);
    const std::string msg = error_of([&] { mb::train::WindowSampler(ds.split("train"), 16, 1); });
    CHECK(contains(msg, "holds no bytes"));
    CHECK(contains(msg, "train"));
  }
  SUBCASE("only empty documents") {
    SmallDataset ds("tp-sampler-all-empty", random_documents({0, 0, 0}, 8));
    REQUIRE(ds.split("train").documents() == 3);
    const std::string msg = error_of([&] { mb::train::WindowSampler(ds.split("train"), 16, 1); });
    CHECK(contains(msg, "holds no bytes"));
  }
}
