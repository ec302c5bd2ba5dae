// The shard format end to end: ShardWriter/ShardReader and DatasetWriter/Dataset round
// trips for documents of every awkward size, byte-range reads, determinism across thread
// counts, compatibility with the zstd tool, the frame cache, and parse_index's checks.
#include <doctest/doctest.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/file_io.hpp"
#include "core/hash.hpp"
#include "core/thread_pool.hpp"
#include "data/dataset.hpp"
#include "data/dataset_writer.hpp"
#include "data/frame_cache.hpp"
#include "data/shard_format.hpp"
#include "data/shard_reader.hpp"
#include "data/shard_writer.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace mb::data;

namespace {

constexpr std::uint64_t kFrame = 64;
constexpr std::uint64_t kShard = 1000;

using mb::test::TempDir;

struct Doc {
  std::string name;
  std::vector<std::uint8_t> bytes;
};

std::vector<std::uint8_t> make_bytes(std::mt19937_64& rng, std::size_t n) {
  std::vector<std::uint8_t> b(n);
  // Alternate incompressible and very compressible content, so frames of both kinds appear.
  const bool random = rng() % 2 == 0;
  for (std::size_t i = 0; i < n; ++i)
    b[i] =
        random ? static_cast<std::uint8_t>(rng()) : static_cast<std::uint8_t>("megabyte "[i % 9]);
  return b;
}

// Documents of every awkward size around the frame size, then many random ones.
std::vector<Doc> make_docs(std::uint64_t seed, std::size_t random_docs) {
  std::mt19937_64 rng(seed);
  const std::size_t F = kFrame;
  std::vector<std::size_t> sizes = {0,     1,          F - 1,  F,          F + 1, 0, 0, 2 * F - 1,
                                    2 * F, 2 * F + 1,  1,      5 * F + 3,  0,     F, F, 20 * F + 7,
                                    3,     kShard - 1, kShard, kShard + 1, 0};
  for (std::size_t i = 0; i < random_docs; ++i) sizes.push_back(rng() % (3 * F));
  std::vector<Doc> docs;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    Doc d;
    switch (i % 7) {
      case 3: d.name = ""; break;
      case 5:
        d.name = std::string("dir/sub dir/\xc3\xbc name\twith tab ") + std::to_string(i);
        break;
      default: d.name = std::string("doc-") + std::to_string(i);
    }
    d.bytes = make_bytes(rng, sizes[i]);
    docs.push_back(std::move(d));
  }
  return docs;
}

std::vector<std::uint8_t> file_bytes(const fs::path& p) { return mb::read_whole_file(p); }

Manifest write_dataset(const fs::path& out, const std::vector<Doc>& train,
                       const std::vector<Doc>& val, unsigned threads) {
  mb::ThreadPool pool(threads);
  DatasetWriterOptions opt;
  opt.shard_bytes = kShard;
  opt.shard.frame_bytes = kFrame;
  EncoderParams enc;
  DatasetWriter w(out, enc, opt, pool);
  // Interleave the splits, as prepare does.
  std::size_t j = 0;
  for (std::size_t i = 0; i < train.size(); ++i) {
    w.add_document(Split::train, train[i].name, train[i].bytes);
    if (i % 5 == 4 && j < val.size()) {
      w.add_document(Split::validation, val[j].name, val[j].bytes);
      ++j;
    }
  }
  for (; j < val.size(); ++j) w.add_document(Split::validation, val[j].name, val[j].bytes);
  return w.commit();
}

std::vector<std::uint8_t> slice(const std::vector<std::uint8_t>& v, std::uint64_t off,
                                std::uint64_t len) {
  return {v.begin() + static_cast<std::ptrdiff_t>(off),
          v.begin() + static_cast<std::ptrdiff_t>(off + len)};
}

// Random reads of a split compared with the original documents.
void check_random_reads(const SplitReader& split, const std::vector<Doc>& docs, std::uint64_t seed,
                        int reads) {
  std::mt19937_64 rng(seed);
  for (int k = 0; k < reads; ++k) {
    const std::uint64_t d = rng() % docs.size();
    const std::uint64_t size = docs[d].bytes.size();
    std::uint64_t off = 0, len = 0;
    switch (rng() % 4) {
      case 0:  // the whole document
        len = size;
        break;
      case 1:  // nothing, anywhere including the very end
        off = rng() % (size + 1);
        break;
      default: off = rng() % (size + 1); len = rng() % (size - off + 1);
    }
    std::vector<std::uint8_t> got(len, 0xAB);
    split.read(d, off, got);
    if (got != slice(docs[d].bytes, off, len)) {
      FAIL_CHECK("read of document " << d << " [" << off << ", +" << len << ") differs");
      return;
    }
  }
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'')
      q += "'\\''";
    else
      q += c;
  }
  return q + "'";
}

bool have_zstd() { return std::system("zstd --version >/dev/null 2>&1") == 0; }

}  // namespace

TEST_CASE("ShardWriter/ShardReader: documents of every size round-trip") {
  TempDir tmp("shard-rt");
  const auto docs = make_docs(1, 60);
  const fs::path path = tmp.path / "one.zst";
  ShardSummary sum;
  {
    mb::ThreadPool pool(2);
    ShardWriter w(path, ShardWriterOptions{kFrame, 3}, pool);
    for (const auto& d : docs) w.add_document(d.name, d.bytes);
    CHECK(w.documents() == docs.size());
    CHECK_FALSE(fs::exists(path));  // only finish() gives the file its name
    sum = w.finish();
  }
  std::uint64_t total = 0;
  for (const auto& d : docs) total += d.bytes.size();
  const auto whole = file_bytes(path);
  CHECK(sum.file == "one.zst");
  CHECK(sum.documents == docs.size());
  CHECK(sum.bytes == total);
  CHECK(sum.compressed_bytes == whole.size());
  CHECK(sum.checksum == mb::xxh64(whole));

  ShardReader r(path, nullptr, 0);
  const ShardIndex& idx = r.index();
  REQUIRE(r.documents() == docs.size());
  CHECK(idx.content_bytes() == total);
  // Frames are cut every kFrame content bytes regardless of document boundaries.
  REQUIRE(idx.frames.size() == (total + kFrame - 1) / kFrame);
  std::uint64_t comp = 0;
  for (std::size_t i = 0; i < idx.frames.size(); ++i) {
    const FrameEntry& f = idx.frames[i];
    CHECK(f.content_offset == i * kFrame);
    CHECK(f.content_size == (i + 1 < idx.frames.size() ? kFrame : total - i * kFrame));
    CHECK(f.compressed_offset == comp);
    comp += f.compressed_size;
    CHECK(idx.frame_of(f.content_offset) == i);
    CHECK(idx.frame_of(f.content_offset + f.content_size - 1) == i);
    // A standalone zstd frame that records its content size and checksum, as zstd -l/-t expect.
    const std::uint8_t* frame = whole.data() + f.compressed_offset;
    CHECK(ZSTD_findFrameCompressedSize(frame, f.compressed_size) == f.compressed_size);
    CHECK(ZSTD_getFrameContentSize(frame, f.compressed_size) == f.content_size);
    CHECK((frame[4] & 0x04) !=
          0);  // Content_Checksum_flag in the frame header descriptor (RFC 8878)
    // ... and the checksum is there: the low 32 bits of XXH64 of the content, at the end.
    CHECK(get_u32(frame + f.compressed_size - 4) ==
          static_cast<std::uint32_t>(mb::xxh64(r.decompress_frame(i))));
    CHECK(f.checksum == mb::xxh64(std::span<const std::uint8_t>(frame, f.compressed_size)));
  }
  for (std::size_t d = 0; d < docs.size(); ++d) {
    CHECK(idx.doc_names[d] == docs[d].name);
    CHECK(r.document_size(d) == docs[d].bytes.size());
    std::vector<std::uint8_t> got(docs[d].bytes.size());
    r.read(d, 0, got);
    CHECK(got == docs[d].bytes);
  }
  // Reads outside a document are errors, not garbage.
  std::vector<std::uint8_t> one(1);
  CHECK_THROWS_AS(r.read(docs.size(), 0, {}), mb::Error);
  CHECK_THROWS_AS(r.read(0, 0, one), mb::Error);  // document 0 is empty
  CHECK_THROWS_AS(r.read(1, 1, one), mb::Error);  // document 1 holds one byte
  CHECK_NOTHROW(r.read(1, 1, {}));
  std::vector<std::uint8_t> too_long(docs[4].bytes.size() + 1);
  CHECK_THROWS_AS(r.read(4, 0, too_long), mb::Error);
  CHECK_THROWS_AS(r.read(4, docs[4].bytes.size() + 1, {}), mb::Error);
}

TEST_CASE("ShardWriter: a shard of empty documents only, and a shard of no documents") {
  TempDir tmp("shard-empty");
  mb::ThreadPool pool(1);
  {
    ShardWriter w(tmp.path / "empties.zst", ShardWriterOptions{kFrame, 3}, pool);
    for (int i = 0; i < 3; ++i) w.add_document(std::string("e") + std::to_string(i), {});
    w.finish();
  }
  {
    ShardWriter w(tmp.path / "none.zst", ShardWriterOptions{kFrame, 3}, pool);
    w.finish();
  }
  ShardReader e(tmp.path / "empties.zst", nullptr, 0);
  CHECK(e.documents() == 3);
  CHECK(e.index().frames.empty());
  CHECK(e.index().doc_names[2] == "e2");
  CHECK(e.document_size(1) == 0);
  CHECK_NOTHROW(e.read(2, 0, {}));
  ShardReader n(tmp.path / "none.zst", nullptr, 0);
  CHECK(n.documents() == 0);
  CHECK(n.index().content_bytes() == 0);
}

TEST_CASE("DatasetWriter + Dataset::open: many documents over many frames and shards") {
  TempDir tmp("dataset-rt");
  const auto train = make_docs(2, 150);
  const auto val = make_docs(3, 25);
  const fs::path dir = tmp.path / "ds";
  const Manifest written = write_dataset(dir, train, val, 2);
  CHECK(fs::exists(dir / "dataset.yaml"));

  Dataset ds = Dataset::open(dir);
  CHECK(ds.manifest().to_yaml() == written.to_yaml());
  CHECK(ds.has_split("train"));
  CHECK(ds.has_split("validation"));
  CHECK_FALSE(ds.has_split("test"));
  CHECK_THROWS_AS(ds.split("test"), mb::Error);

  for (const auto* docs : {&train, &val}) {
    const SplitReader& split = ds.split(docs == &train ? "train" : "validation");
    const SplitInfo& info = *ds.manifest().find_split(split.name());
    std::uint64_t total = 0;
    for (const auto& d : *docs) total += d.bytes.size();
    REQUIRE(split.documents() == docs->size());
    CHECK(split.bytes() == total);
    CHECK(info.documents == docs->size());
    CHECK(info.bytes == total);
    // Small shards: several of them, each closed once it holds shard_bytes, with a
    // document never split between two.
    CHECK(info.shards.size() >= 3);
    REQUIRE(split.shards().size() == info.shards.size());
    std::uint64_t first = 0;
    for (std::size_t s = 0; s < info.shards.size(); ++s) {
      const ShardReader& r = split.shards()[s];
      CHECK(r.path().filename() == info.shards[s].file);
      CHECK(r.index().frames.size() >= 2);
      if (s + 1 < info.shards.size()) {
        CHECK(r.index().content_bytes() >= kShard);
        const std::uint64_t last = docs->at(first + r.documents() - 1).bytes.size();
        CHECK(r.index().content_bytes() - last < kShard);
      }
      first += r.documents();
    }
    CHECK(first == docs->size());
    for (std::size_t d = 0; d < docs->size(); ++d) {
      CHECK(split.document_name(d) == (*docs)[d].name);
      CHECK(split.document_size(d) == (*docs)[d].bytes.size());
      CHECK(split.read_document(d) == (*docs)[d].bytes);
    }
    check_random_reads(split, *docs, 11, 800);
    std::vector<std::uint8_t> one(1);
    CHECK_THROWS_AS(split.read(docs->size(), 0, one), mb::Error);
    CHECK_THROWS_AS(split.document_size(docs->size()), mb::Error);
  }
}

TEST_CASE("DatasetWriter: an empty validation split is listed and opens with no documents") {
  TempDir tmp("dataset-noval");
  const auto train = make_docs(4, 5);
  write_dataset(tmp.path / "ds", train, {}, 1);
  Dataset ds = Dataset::open(tmp.path / "ds");
  REQUIRE(ds.has_split("validation"));
  CHECK(ds.split("validation").documents() == 0);
  CHECK(ds.split("validation").shards().empty());
  CHECK(ds.split("train").documents() == train.size());
}

TEST_CASE("DatasetWriter: 1 and 3 threads write byte-identical shards and manifest") {
  TempDir tmp("dataset-threads");
  const auto train = make_docs(5, 120);
  const auto val = make_docs(6, 20);
  write_dataset(tmp.path / "t1", train, val, 1);
  write_dataset(tmp.path / "t3", train, val, 3);
  std::vector<std::string> names1, names3;
  for (const auto& e : fs::directory_iterator(tmp.path / "t1"))
    names1.push_back(e.path().filename().string());
  for (const auto& e : fs::directory_iterator(tmp.path / "t3"))
    names3.push_back(e.path().filename().string());
  std::sort(names1.begin(), names1.end());
  std::sort(names3.begin(), names3.end());
  REQUIRE(names1 == names3);
  CHECK(names1.size() >= 5);
  CHECK(std::find(names1.begin(), names1.end(), "dataset.yaml") != names1.end());
  for (const auto& n : names1) {
    INFO("file " << n);
    CHECK(file_bytes(tmp.path / "t1" / n) == file_bytes(tmp.path / "t3" / n));
  }
}

TEST_CASE("the zstd tool decompresses a shard to its documents and tests it clean") {
  REQUIRE_MESSAGE(have_zstd(), "the zstd command is needed (Debian package zstd)");
  TempDir tmp("dataset-zstd");
  const auto train = make_docs(7, 80);
  write_dataset(tmp.path / "ds", train, {}, 2);
  Dataset ds = Dataset::open(tmp.path / "ds");
  const SplitReader& split = ds.split("train");
  REQUIRE(split.shards().size() >= 3);
  std::size_t first = 0;
  for (const auto& r : split.shards()) {
    std::vector<std::uint8_t> expect;
    for (std::size_t d = first; d < first + r.documents(); ++d)
      expect.insert(expect.end(), train[d].bytes.begin(), train[d].bytes.end());
    first += r.documents();
    const fs::path out = tmp.path / "out.bin";
    const std::string shard = shell_quote(r.path().string());
    INFO("shard " << r.path().string());
    CHECK(
        std::system(("zstd -q -d -c " + shard + " > " + shell_quote(out.string()) + " 2>/dev/null")
                        .c_str()) == 0);
    CHECK(file_bytes(out) == expect);
    CHECK(std::system(("zstd -q -t " + shard + " 2>/dev/null").c_str()) == 0);
  }
  CHECK(first == train.size());

  SUBCASE("a shard of empty documents is a valid, empty zstd stream") {
    mb::ThreadPool pool(1);
    ShardWriter w(tmp.path / "empty.zst", ShardWriterOptions{kFrame, 3}, pool);
    w.add_document("e", {});
    w.finish();
    const std::string shard = shell_quote((tmp.path / "empty.zst").string());
    const fs::path out = tmp.path / "out-empty.bin";
    CHECK(
        std::system(("zstd -q -d -c " + shard + " > " + shell_quote(out.string()) + " 2>/dev/null")
                        .c_str()) == 0);
    CHECK(fs::file_size(out) == 0);
    CHECK(std::system(("zstd -q -t " + shard + " 2>/dev/null").c_str()) == 0);
  }
  SUBCASE("the tool notices a corrupted frame") {
    // Sanity check of the check itself: zstd -t does fail on a damaged shard.
    const fs::path p = split.shards()[0].path();
    auto bytes = file_bytes(p);
    const FrameEntry& f = split.shards()[0].index().frames[0];
    bytes[f.compressed_offset + f.compressed_size - 2] ^= 0x5A;  // inside the frame's checksum
    std::ofstream(tmp.path / "bad.zst", std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    CHECK(
        std::system(("zstd -q -t " + shell_quote((tmp.path / "bad.zst").string()) + " 2>/dev/null")
                        .c_str()) != 0);
  }
}

TEST_CASE("a tiny frame cache still gives correct reads") {
  TempDir tmp("dataset-cache");
  const auto train = make_docs(8, 100);
  write_dataset(tmp.path / "ds", train, {}, 2);
  for (std::uint64_t cap :
       {std::uint64_t{0}, std::uint64_t{1}, kFrame - 1, kFrame, kFrame + 1, 3 * kFrame}) {
    INFO("cache_bytes " << cap);
    DatasetOptions opt;
    opt.cache_bytes = cap;
    Dataset ds = Dataset::open(tmp.path / "ds", opt);
    check_random_reads(ds.split("train"), train, 100 + cap, 400);
    for (std::size_t d = 0; d < train.size(); d += 7)
      CHECK(ds.split("train").read_document(d) == train[d].bytes);
  }

  SUBCASE("a shard reader on its own small cache keeps it within capacity") {
    const std::uint64_t cap = 2 * kFrame + 10;
    FrameCache cache(cap);
    Dataset plain = Dataset::open(tmp.path / "ds");
    const fs::path shard = plain.split("train").shards()[1].path();
    ShardReader r(shard, &cache, 0);
    ShardReader ref(shard, nullptr, 0);
    std::mt19937_64 rng(9);
    std::uint64_t max_held = 0;
    for (int k = 0; k < 300; ++k) {
      const std::uint64_t d = rng() % r.documents();
      const std::uint64_t size = r.document_size(d);
      const std::uint64_t off = rng() % (size + 1);
      const std::uint64_t len = rng() % (size - off + 1);
      std::vector<std::uint8_t> a(len), b(len);
      r.read(d, off, a);
      ref.read(d, off, b);
      CHECK(a == b);
      CHECK(cache.held_bytes() <= cap);
      max_held = std::max(max_held, cache.held_bytes());
    }
    CHECK(max_held > 0);  // the cache was used at all
  }

  SUBCASE("concurrent readers over a tiny cache") {
    DatasetOptions opt;
    opt.cache_bytes = kFrame * 2;
    Dataset ds = Dataset::open(tmp.path / "ds", opt);
    mb::ThreadPool pool(3);
    std::vector<std::future<void>> jobs;
    for (int t = 0; t < 3; ++t)
      jobs.push_back(pool.submit([&, t] {
        check_random_reads(ds.split("train"), train, 500 + static_cast<unsigned>(t), 300);
      }));
    for (auto& j : jobs) CHECK_NOTHROW(j.get());
  }
}

TEST_CASE("FrameCache: bounded in bytes, least recently used evicted, loads only on a miss") {
  SUBCASE("random use never holds more than the capacity") {
    const std::uint64_t cap = 1000;
    FrameCache cache(cap);
    CHECK(cache.capacity_bytes() == cap);
    std::mt19937_64 rng(12);
    int loads = 0;
    for (int k = 0; k < 3000; ++k) {
      const std::uint64_t key = rng() % 40;
      const std::size_t size =
          static_cast<std::size_t>((key * 97) % 1200);  // some larger than the cache
      auto got = cache.get(key, [&] {
        ++loads;
        return std::vector<std::uint8_t>(size, static_cast<std::uint8_t>(key));
      });
      REQUIRE(got);
      CHECK(got->size() == size);
      if (size > 0) CHECK((*got)[size - 1] == static_cast<std::uint8_t>(key));
      CHECK(cache.held_bytes() <= cap);
    }
    CHECK(loads < 3000);  // some hits
    CHECK(loads > 40);    // and evictions
  }
  SUBCASE("LRU order") {
    FrameCache cache(300);
    int loads = 0;
    auto get = [&](std::uint64_t key) {
      return cache.get(key, [&] {
        ++loads;
        return std::vector<std::uint8_t>(100, static_cast<std::uint8_t>(key));
      });
    };
    get(1);
    get(2);
    get(3);
    CHECK(loads == 3);
    CHECK(cache.held_bytes() == 300);
    get(1);  // hit; 2 is now the least recently used
    CHECK(loads == 3);
    get(4);  // evicts 2
    CHECK(loads == 4);
    CHECK(cache.held_bytes() == 300);
    get(1);
    get(3);
    get(4);
    CHECK(loads == 4);
    get(2);  // a miss again
    CHECK(loads == 5);
    CHECK((*get(2))[0] == 2);
    CHECK(loads == 5);
  }
  SUBCASE("a frame larger than the cache is served but not kept") {
    FrameCache cache(50);
    int loads = 0;
    auto load = [&] {
      ++loads;
      return std::vector<std::uint8_t>(51, 7);
    };
    CHECK(cache.get(1, load)->size() == 51);
    CHECK(cache.get(1, load)->size() == 51);
    CHECK(loads == 2);
    CHECK(cache.held_bytes() == 0);
  }
}

namespace {

ShardIndex sample_index() {
  ShardIndex idx;
  idx.frames = {
      {0, 40, 0, 64, 0x1122334455667788ull}, {40, 25, 64, 64, 2}, {65, 17, 128, 30, ~0ull}};
  idx.doc_starts = {0, 0, 100, 100, 158};
  idx.doc_names = {"", "first", std::string("\xff\0xyz", 5), "last/one"};
  return idx;
}

// Re-seal a payload edited in place: recompute the checksum in its footer.
void reseal(std::vector<std::uint8_t>& payload) {
  const std::size_t body = payload.size() - kFooterBytes;
  const std::uint64_t h = mb::xxh64(std::span<const std::uint8_t>(payload.data(), body));
  for (int i = 0; i < 8; ++i)
    payload[body + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(h >> (8 * i));
}

void set_u64(std::vector<std::uint8_t>& p, std::size_t at, std::uint64_t v) {
  for (int i = 0; i < 8; ++i)
    p[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (8 * i));
}

std::string parse_error(const std::vector<std::uint8_t>& payload) {
  try {
    parse_index(payload, "WHERE");
  } catch (const mb::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("serialize_index/parse_index: round trip, and every damaged payload is refused") {
  const ShardIndex idx = sample_index();
  const auto frame = serialize_index(idx);
  REQUIRE(frame.size() > 8 + kIndexHeaderBytes + kFooterBytes);
  CHECK(get_u32(frame.data()) == kSkippableMagic);
  CHECK(get_u32(frame.data() + 4) == frame.size() - 8);
  const std::vector<std::uint8_t> payload(frame.begin() + 8, frame.end());
  CHECK(get_u64(payload.data() + payload.size() - 16) == payload.size());
  CHECK(std::equal(kFooterMagic.begin(), kFooterMagic.end(), payload.end() - 8));

  const ShardIndex back = parse_index(payload, "sample");
  REQUIRE(back.frames.size() == idx.frames.size());
  for (std::size_t i = 0; i < idx.frames.size(); ++i) {
    CHECK(back.frames[i].compressed_offset == idx.frames[i].compressed_offset);
    CHECK(back.frames[i].compressed_size == idx.frames[i].compressed_size);
    CHECK(back.frames[i].content_offset == idx.frames[i].content_offset);
    CHECK(back.frames[i].content_size == idx.frames[i].content_size);
    CHECK(back.frames[i].checksum == idx.frames[i].checksum);
  }
  CHECK(back.doc_starts == idx.doc_starts);
  CHECK(back.doc_names == idx.doc_names);
  CHECK(back.documents() == 4);
  CHECK(back.content_bytes() == 158);

  SUBCASE("truncated at either end") {
    for (std::size_t n = 0; n < payload.size(); ++n) {
      INFO("kept " << n << " of " << payload.size() << " bytes");
      std::vector<std::uint8_t> head(payload.begin(),
                                     payload.begin() + static_cast<std::ptrdiff_t>(n));
      CHECK(parse_error(head).find("WHERE") == 0);
      std::vector<std::uint8_t> tail(payload.end() - static_cast<std::ptrdiff_t>(n), payload.end());
      CHECK(parse_error(tail).find("WHERE") == 0);
    }
  }
  SUBCASE("one flipped byte in the body or its checksum") {
    for (std::size_t i = 0; i < payload.size() - 16; ++i) {
      INFO("byte " << i);
      auto bad = payload;
      bad[i] ^= 0x10;
      CHECK(parse_error(bad).find("WHERE") == 0);
    }
  }
  SUBCASE("consistent checksum, inconsistent structure") {
    auto bad = payload;
    SUBCASE("unsupported version") {
      bad[8] = 2;
      reseal(bad);
      CHECK(parse_error(bad).find("version 2") != std::string::npos);
    }
    SUBCASE("absurd frame count") {
      set_u64(bad, 16, ~0ull / 8);
      reseal(bad);
      CHECK(parse_error(bad).find("counts exceed") != std::string::npos);
    }
    SUBCASE("absurd document count") {
      set_u64(bad, 24, ~0ull);
      reseal(bad);
      CHECK(parse_error(bad).find("counts exceed") != std::string::npos);
    }
    SUBCASE("one frame more than the bytes hold") {
      set_u64(bad, 16, 4);
      reseal(bad);
      CHECK(parse_error(bad).find("does not match") != std::string::npos);
    }
    SUBCASE("content size disagreeing with the frames") {
      set_u64(bad, 32, 159);
      reseal(bad);
      CHECK(parse_error(bad).find("WHERE: corrupt shard index") == 0);
    }
    SUBCASE("frames that are not contiguous") {
      set_u64(bad, kIndexHeaderBytes + kFrameEntryBytes + 16, 65);
      reseal(bad);
      CHECK(parse_error(bad).find("contiguous") != std::string::npos);
    }
    SUBCASE("document offsets out of order") {
      const std::size_t docs = kIndexHeaderBytes + 3 * kFrameEntryBytes;
      set_u64(bad, docs + 2 * 8, 101);
      set_u64(bad, docs + 3 * 8, 99);
      reseal(bad);
      CHECK(parse_error(bad).find("out of order") != std::string::npos);
    }
    SUBCASE("name lengths not adding up") {
      const std::size_t lens = kIndexHeaderBytes + 3 * kFrameEntryBytes + 5 * 8;
      bad[lens + 4] = 4;  // "first" claims 4 bytes, and the total no longer matches
      reseal(bad);
      CHECK(parse_error(bad).find("name lengths") != std::string::npos);
    }
  }
}

TEST_CASE("parse_index checks the footer's payload size and magic") {
  // Callers other than ShardReader (which checks the footer itself) rely on this too.
  const auto frame = serialize_index(sample_index());
  const std::vector<std::uint8_t> payload(frame.begin() + 8, frame.end());
  for (std::size_t i = payload.size() - 16; i < payload.size(); ++i) {
    INFO("footer byte " << i - (payload.size() - 24));
    auto bad = payload;
    bad[i] ^= 0x10;
    CHECK(parse_error(bad).find("WHERE") == 0);
  }
}
