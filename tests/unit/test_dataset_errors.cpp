// Damaged datasets and bad manifests: every fault is an mb::Error whose message names the
// file (and where it helps the line, key, frame and offset), never a crash or wrong bytes.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "error_of.hpp"
#include "core/error.hpp"
#include "core/file_io.hpp"
#include "core/hash.hpp"
#include "core/thread_pool.hpp"
#include "data/dataset.hpp"
#include "data/dataset_writer.hpp"
#include "data/manifest.hpp"
#include "data/shard_reader.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace mb::data;

namespace {

using mb::test::TempDir;

using mb::test::contains;
using mb::test::error_of;

// A small text dataset: train in several shards of several frames, and a validation split.
struct SmallDataset {
  TempDir tmp;
  fs::path dir;
  std::vector<std::vector<std::uint8_t>> train;
  explicit SmallDataset(const char* name) : tmp(name), dir(tmp.path / "ds") {
    std::mt19937_64 rng(42);
    mb::ThreadPool pool(2);
    DatasetWriterOptions opt;
    opt.shard_bytes = 1000;
    opt.shard.frame_bytes = 64;
    DatasetWriter w(dir, EncoderParams{}, opt, pool);
    for (int i = 0; i < 40; ++i) {
      std::vector<std::uint8_t> doc(rng() % 300);
      for (auto& b : doc) b = static_cast<std::uint8_t>(rng());
      w.add_document(Split::train, std::string("t") + std::to_string(i), doc);
      train.push_back(std::move(doc));
    }
    w.add_document(Split::validation, "v0", std::vector<std::uint8_t>(100, 'v'));
    w.commit();
  }
  SmallDataset(const SmallDataset&) = delete;
  SmallDataset& operator=(const SmallDataset&) = delete;
  fs::path shard(const std::string& name) const { return dir / name; }
  // The manifest's entry for a train shard.
  ShardInfo info(const std::string& file) const {
    const Manifest m = Manifest::load(dir);
    for (const auto& s : m.find_split("train")->shards)
      if (s.file == file) return s;
    FAIL("no shard " << file);
    return {};
  }
};

void flip_byte(const fs::path& p, std::uint64_t at) {
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f);
  f.seekg(static_cast<std::streamoff>(at));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x20);
  f.seekp(static_cast<std::streamoff>(at));
  f.write(&c, 1);
  REQUIRE(f);
}

}  // namespace

TEST_CASE("an intact dataset opens and verifies (the baseline for the cases below)") {
  SmallDataset ds("err-baseline");
  Dataset d = Dataset::open(ds.dir);
  REQUIRE(d.split("train").shards().size() >= 3);
  const Manifest m = Manifest::load(ds.dir);
  for (const auto& sp : m.splits)
    for (const auto& sh : sp.shards) CHECK_NOTHROW(verify_shard(ds.dir, sh));
  for (std::size_t i = 0; i < ds.train.size(); ++i)
    CHECK(d.split("train").read_document(i) == ds.train[i]);
}

TEST_CASE("a truncated shard is refused at open, naming the shard") {
  SmallDataset ds("err-trunc");
  const fs::path p = ds.shard("train-00001.zst");
  const std::uint64_t size = fs::file_size(p);
  std::uint64_t keep = 0;
  SUBCASE("the last byte cut") { keep = size - 1; }
  SUBCASE("the last 30 bytes cut") { keep = size - 30; }
  SUBCASE("cut in the middle") { keep = size / 2; }
  SUBCASE("cut to nothing") { keep = 0; }
  INFO("kept " << keep << " of " << size << " bytes");
  const ShardInfo info = ds.info("train-00001.zst");
  fs::resize_file(p, keep);
  CHECK(contains(error_of([&] { Dataset::open(ds.dir); }), p.string()));
  CHECK(contains(error_of([&] { verify_shard(ds.dir, info); }), p.string()));
}

TEST_CASE("a flipped byte in a frame is reported with the shard, the frame and its offset") {
  SmallDataset ds("err-frame");
  const std::string file = "train-00001.zst";
  const fs::path p = ds.shard(file);
  const ShardInfo info = ds.info(file);
  Dataset before = Dataset::open(ds.dir);
  const SplitReader& train = before.split("train");
  REQUIRE(train.shards().size() >= 2);
  const std::uint64_t first_doc =
      train.shards()[0].documents();  // global index of the shard's first document
  const ShardIndex idx = train.shards()[1].index();
  REQUIRE(idx.frames.size() >= 4);

  const std::size_t k = 2;
  const FrameEntry f = idx.frames[k];
  // The document holding the first content byte of frame k, and the first non-empty one
  // (which starts in frame 0).
  std::uint64_t hit = 0;
  while (idx.doc_starts[hit + 1] <= f.content_offset) ++hit;
  std::uint64_t safe = 0;
  while (idx.doc_starts[safe + 1] == idx.doc_starts[safe]) ++safe;
  REQUIRE(idx.doc_starts[safe] < idx.frames[0].content_size);
  // Its bytes that lie in frame 0.
  const std::uint64_t safe_len =
      std::min(idx.doc_starts[safe + 1], idx.frames[0].content_size) - idx.doc_starts[safe];

  SUBCASE("in the middle of the frame") {
    flip_byte(p, f.compressed_offset + f.compressed_size / 2);
  }
  SUBCASE("in the frame's zstd header") { flip_byte(p, f.compressed_offset + 4); }
  SUBCASE("in its last byte") { flip_byte(p, f.compressed_offset + f.compressed_size - 1); }

  // Opening does not decompress, so the dataset still opens; the read names the fault.
  Dataset ds2 = Dataset::open(ds.dir);
  const std::string msg =
      error_of([&] { (void)ds2.split("train").read_document(first_doc + hit); });
  INFO(msg);
  CHECK(contains(msg, p.string()));
  CHECK(contains(msg, std::string("frame ") + std::to_string(k)));
  CHECK(contains(msg, std::string("at offset ") + std::to_string(f.compressed_offset)));
  std::vector<std::uint8_t> part(safe_len);
  ds2.split("train").read(first_doc + safe, 0, part);
  const auto& orig = ds.train[first_doc + safe];
  CHECK(part == std::vector<std::uint8_t>(orig.begin(),
                                          orig.begin() + static_cast<std::ptrdiff_t>(safe_len)));
  // Other shards are untouched.
  CHECK(ds2.split("train").read_document(0) == ds.train[0]);

  const std::string vmsg = error_of([&] { verify_shard(ds.dir, info); });
  INFO(vmsg);
  CHECK(contains(vmsg, p.string()));
  CHECK(contains(vmsg, std::string("frame ") + std::to_string(k) + std::string(" at offset ") +
                           std::to_string(f.compressed_offset)));
}

TEST_CASE("a flipped byte in a shard's index is refused at open") {
  SmallDataset ds("err-idx");
  const std::string file = "train-00002.zst";
  const fs::path p = ds.shard(file);
  const ShardInfo info = ds.info(file);
  std::uint64_t index_start = 0;
  std::uint64_t payload = 0;
  {
    ShardReader r(p, nullptr, 0);
    const FrameEntry& last = r.index().frames.back();
    index_start = last.compressed_offset + last.compressed_size;  // the skippable frame
    payload = r.file_size() - index_start - 8;
  }
  SUBCASE("in the frame count") { flip_byte(p, index_start + 8 + 16); }
  SUBCASE("in a frame entry") { flip_byte(p, index_start + 8 + kIndexHeaderBytes + 3); }
  SUBCASE("in the last document name") {
    flip_byte(p, index_start + 8 + payload - kFooterBytes - 1);
  }
  SUBCASE("in the index checksum") { flip_byte(p, index_start + 8 + payload - kFooterBytes); }
  SUBCASE("in the payload size") { flip_byte(p, index_start + 8 + payload - 16); }
  SUBCASE("in the footer magic") { flip_byte(p, index_start + 8 + payload - 1); }
  SUBCASE("in the skippable frame header") { flip_byte(p, index_start + 1); }
  const std::string msg = error_of([&] { Dataset::open(ds.dir); });
  INFO(msg);
  CHECK(contains(msg, p.string()));
  CHECK(contains(msg.substr(p.string().size()), "index"));
  CHECK(contains(error_of([&] { verify_shard(ds.dir, info); }), p.string()));
}

TEST_CASE("an index with a valid checksum whose frames do not tile the file is refused at open") {
  SmallDataset ds("err-tile");
  const fs::path p = ds.shard("train-00001.zst");
  auto bytes = mb::read_whole_file(p);
  const std::uint64_t payload = get_u64(bytes.data() + bytes.size() - 16);
  const std::size_t start = bytes.size() - payload;  // the payload, after the skippable header
  // Frame 1's compressed offset, one byte off; then a matching index checksum.
  const std::size_t field = start + kIndexHeaderBytes + kFrameEntryBytes;
  bytes[field] = static_cast<std::uint8_t>(bytes[field] + 1);
  const std::size_t body = static_cast<std::size_t>(payload) - kFooterBytes;
  const std::uint64_t h = mb::xxh64(std::span<const std::uint8_t>(bytes.data() + start, body));
  for (int i = 0; i < 8; ++i)
    bytes[start + body + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(h >> (8 * i));
  std::ofstream(p, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  const std::string msg = error_of([&] { Dataset::open(ds.dir); });
  CHECK(contains(msg, p.string()));
  CHECK(contains(msg, "do not tile"));
}

TEST_CASE("a shard that does not match dataset.yaml is refused at open") {
  SmallDataset ds("err-swap");
  const fs::path p = ds.shard("train-00001.zst");
  fs::copy_file(ds.shard("train-00000.zst"), p, fs::copy_options::overwrite_existing);
  const std::string msg = error_of([&] { Dataset::open(ds.dir); });
  CHECK(contains(msg, p.string()));
  CHECK(contains(msg, "dataset.yaml says"));
}

TEST_CASE("a missing shard is named at open") {
  SmallDataset ds("err-gone");
  const fs::path p = ds.shard("train-00001.zst");
  fs::remove(p);
  const std::string msg = error_of([&] { Dataset::open(ds.dir); });
  CHECK(contains(msg, p.string()));
  CHECK(contains(msg.substr(p.string().size()), "missing"));
}

TEST_CASE("a directory that is not a dataset, and one that does not exist") {
  TempDir tmp("err-notds");
  SUBCASE("empty directory") {
    const std::string msg = error_of([&] { Dataset::open(tmp.path); });
    CHECK(contains(msg, tmp.path.string()));
    CHECK(contains(msg, "not a megabyte dataset"));
  }
  SUBCASE("shards without dataset.yaml") {
    SmallDataset ds("err-notds2");
    fs::remove(ds.dir / "dataset.yaml");
    CHECK(contains(error_of([&] { Dataset::open(ds.dir); }), "not a megabyte dataset"));
  }
  SUBCASE("no such directory") {
    const fs::path nowhere = tmp.path / "nowhere";
    const std::string msg = error_of([&] { Dataset::open(nowhere); });
    CHECK(contains(msg, nowhere.string()));
    CHECK(contains(msg, "no such dataset directory"));
  }
  SUBCASE("a file, not a directory") {
    std::ofstream(tmp.path / "file.txt") << "x";
    const std::string msg = error_of([&] { Dataset::open(tmp.path / "file.txt"); });
    CHECK(contains(msg, "not a directory"));
  }
}

namespace {

const std::string kFile = "/some/where/dataset.yaml";

const std::string kText =
    "# megabyte dataset manifest\n"
    "format: megabyte-dataset\n"
    "version: 1\n"
    "modality: text\n"
    "encoder:\n"
    "  layout: bytes\n"
    "splits:\n"
    "  train:\n"
    "    documents: 3\n"
    "    bytes: 300\n"
    "    shards:\n"
    "      - file: train-00000.zst\n"
    "        documents: 2\n"
    "        bytes: 200\n"
    "        compressed_bytes: 150\n"
    "        xxh64: 0123456789abcdef\n"
    "      - file: train-00001.zst\n"
    "        documents: 1\n"
    "        bytes: 100\n"
    "        compressed_bytes: 90\n"
    "        xxh64: FEDCBA9876543210\n"
    "  validation:\n"
    "    documents: 0\n"
    "    bytes: 0\n"
    "    shards: []\n";

const std::string kImageEncoder =
    "modality: image\n"
    "encoder:\n"
    "  layout: patch-scan\n"
    "  image_size: 64\n"
    "  patch_size: 12\n"
    "  channels: 3\n";

// `text` with the first occurrence of `from` replaced by `to` (which must be there).
std::string edit(std::string text, const std::string& from, const std::string& to) {
  const std::size_t at = text.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, "'" << from << "' not in the manifest");
  return text.replace(at, from.size(), to);
}

// "line N" of the first line of `text` that contains `part`, counted independently of the parser.
std::string line_of(const std::string& text, const std::string& part) {
  const std::size_t at = text.find(part);
  REQUIRE(at != std::string::npos);
  return std::string("line ") +
         std::to_string(
             1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n'));
}

std::string parse_error(const std::string& text) {
  return error_of([&] { Manifest::parse(text, kFile); });
}

}  // namespace

TEST_CASE("Manifest::parse: the reference manifest parses (baseline for the cases below)") {
  const Manifest m = Manifest::parse(kText, kFile);
  CHECK(m.version == 1);
  CHECK(m.encoder.modality == Modality::text);
  REQUIRE(m.splits.size() == 2);
  const SplitInfo* t = m.find_split("train");
  REQUIRE(t != nullptr);
  CHECK(t->documents == 3);
  CHECK(t->bytes == 300);
  REQUIRE(t->shards.size() == 2);
  CHECK(t->shards[0].file == "train-00000.zst");
  CHECK(t->shards[0].checksum == 0x0123456789abcdefull);
  CHECK(t->shards[1].checksum == 0xfedcba9876543210ull);
  CHECK(t->compressed_bytes() == 240);
  CHECK(m.find_split("validation")->shards.empty());
  CHECK(m.find_split("test") == nullptr);
  const Manifest img = Manifest::parse(
      edit(kText, "modality: text\nencoder:\n  layout: bytes\n", kImageEncoder), kFile);
  CHECK(img.encoder.modality == Modality::image);
  CHECK(img.encoder.image.patch_size == 12);
}

TEST_CASE("Manifest::parse: unknown keys name the file, the line and the key") {
  SUBCASE("a near-typo at the top level gets a hint") {
    const std::string text = edit(kText, "modality: text", "modalty: text");
    const std::string msg = parse_error(text);
    INFO(msg);
    CHECK(contains(msg, kFile));
    CHECK(contains(msg, line_of(text, "modalty") + ":"));
    CHECK(line_of(text, "modalty") == "line 4");
    CHECK(contains(msg, "'modalty'"));
    CHECK(contains(msg, "did you mean 'modality'"));
  }
  SUBCASE("an unrelated key lists the known ones") {
    const std::string text = edit(kText, "version: 1\n", "version: 1\ncolour: blue\n");
    const std::string msg = parse_error(text);
    INFO(msg);
    CHECK(contains(msg, kFile + ": line 4:"));
    CHECK(contains(msg, "'colour'"));
    CHECK(contains(msg, "the keys of the top level are:"));
    CHECK_FALSE(contains(msg, "did you mean"));
  }
  SUBCASE("inside a shard entry") {
    const std::string text = edit(kText, "        compressed_bytes: 90\n",
                                  "        compressed_bytes: 90\n        checksum: 7\n");
    const std::string msg = parse_error(text);
    INFO(msg);
    CHECK(contains(msg, kFile + ": " + line_of(text, "checksum") + ":"));
    CHECK(line_of(text, "checksum") == "line 21");
    CHECK(contains(msg, "splits.train.shards[1].checksum"));
  }
  SUBCASE("a typo inside a shard entry") {
    const std::string text = edit(kText, "        documents: 2\n", "        documnets: 2\n");
    const std::string msg = parse_error(text);
    INFO(msg);
    CHECK(contains(msg, kFile + ": line 13:"));
    CHECK(contains(msg, "did you mean 'splits.train.shards[0].documents'"));
  }
  SUBCASE("inside the encoder") {
    const std::string text =
        edit(kText, "  layout: bytes\n", "  layout: bytes\n  image_size: 64\n");
    const std::string msg = parse_error(text);
    INFO(msg);
    CHECK(contains(msg, kFile + ": line 7:"));
    CHECK(contains(msg, "encoder.image_size"));
  }
  SUBCASE("an unknown split") {
    const std::string text = edit(kText, "  validation:\n", "  test:\n");
    const std::string msg = parse_error(text);
    INFO(msg);
    CHECK(contains(msg, kFile + ": line 22:"));
    CHECK(contains(msg, "splits.test"));
  }
}

TEST_CASE("Manifest::parse: bad values name the line, the key and the value") {
  std::string text, key, value;
  SUBCASE("negative document count") {
    text = edit(kText, "documents: 2", "documents: -3");
    key = "documents";
    value = "-3";
  }
  SUBCASE("negative split bytes") {
    text = edit(kText, "bytes: 300", "bytes: -300");
    key = "bytes";
    value = "-300";
  }
  SUBCASE("checksum that is not hex") {
    text = edit(kText, "xxh64: 0123456789abcdef", "xxh64: xyz");
    key = "xxh64";
    value = "xyz";
  }
  SUBCASE("checksum with a bad digit") {
    text = edit(kText, "xxh64: 0123456789abcdef", "xxh64: 0123456789abcdeg");
    key = "xxh64";
    value = "0123456789abcdeg";
  }
  SUBCASE("unknown modality") {
    text = edit(kText, "modality: text", "modality: video");
    key = "modality";
    value = "video";
  }
  SUBCASE("image patch size that is not 3*p*p") {
    text = edit(edit(kText, "modality: text\nencoder:\n  layout: bytes\n", kImageEncoder),
                "patch_size: 12", "patch_size: 10");
    key = "patch_size";
    value = "10";
  }
  SUBCASE("image size out of range") {
    text = edit(edit(kText, "modality: text\nencoder:\n  layout: bytes\n", kImageEncoder),
                "image_size: 64", "image_size: 0");
    key = "image_size";
    value = "0";
  }
  SUBCASE("wrong text layout") {
    text = edit(kText, "layout: bytes", "layout: words");
    key = "layout";
    value = "words";
  }
  SUBCASE("unsupported version") {
    text = edit(kText, "version: 1", "version: 2");
    key = "version";
    value = "2";
  }
  SUBCASE("wrong format") {
    text = edit(kText, "format: megabyte-dataset", "format: tar");
    key = "format";
    value = "tar";
  }
  SUBCASE("audio sample rate out of range") {
    text = edit(kText, "modality: text\nencoder:\n  layout: bytes\n",
                "modality: audio\nencoder:\n  layout: pcm\n  sample_rate: 999\n  encoding: "
                "pcm_s16le\n  channels: 1\n");
    key = "sample_rate";
    value = "999";
  }
  // The line of the key, counted in the text itself (the value replaced is on it).
  const std::string line = line_of(text, key + ": " + value);
  const std::string msg = parse_error(text);
  INFO(msg);
  CHECK(contains(msg, kFile + ": " + line + ":"));
  CHECK(contains(msg, key));
  CHECK(contains(msg, value));
}

TEST_CASE("Manifest::parse: broken YAML names the line") {
  std::string text, bad_line;
  SUBCASE("a stray mapping value") {
    bad_line = "        bytes: 100: 4\n";
    text = edit(kText, "        bytes: 100\n", bad_line);
  }
  SUBCASE("a tab for indentation") {
    bad_line = "\tdocuments: 1\n";
    text = edit(kText, "        documents: 1\n", bad_line);
  }
  const std::string msg = parse_error(text);
  INFO(msg);
  CHECK(contains(msg, kFile + ": " + line_of(text, bad_line)));
  CHECK(contains(msg, "invalid YAML"));
}

TEST_CASE("Manifest::parse: split totals must match their shards") {
  SUBCASE("documents") {
    const std::string msg = parse_error(edit(kText, "    documents: 3\n", "    documents: 4\n"));
    CHECK(contains(msg, kFile + ": line 9:"));
    CHECK(contains(msg, "split totals do not match"));
  }
  SUBCASE("bytes") {
    const std::string msg = parse_error(edit(kText, "    bytes: 300\n", "    bytes: 301\n"));
    CHECK(contains(msg, "split totals do not match"));
  }
  SUBCASE("an empty split claiming documents") {
    const std::string msg = parse_error(edit(kText, "    documents: 0\n", "    documents: 1\n"));
    CHECK(contains(msg, "split totals do not match"));
    CHECK(contains(msg, "splits.validation.documents"));
  }
}

TEST_CASE("Manifest::parse: a shard file must be a plain name inside the dataset") {
  for (const char* name : {"../x", "sub/x.zst", "/etc/passwd", "..", "."}) {
    INFO(name);
    const std::string text = edit(kText, "file: train-00001.zst", std::string("file: ") + name);
    const std::string msg = parse_error(text);
    CHECK(contains(msg, kFile + ": line 17:"));
    CHECK(contains(msg, std::string("'") + name + "'"));
  }
  // Quoted empty name.
  CHECK(
      contains(parse_error(edit(kText, "file: train-00001.zst", "file: \"\"")), "plain file name"));
}

TEST_CASE("Manifest::parse: empty and non-mapping documents") {
  CHECK(contains(parse_error(""), kFile));
  CHECK(contains(parse_error("- a\n- b\n"), kFile));
  CHECK(contains(parse_error(edit(kText, "  layout: bytes\n", "  [bytes]\n")), kFile));
  CHECK(contains(parse_error(edit(kText, "    shards: []\n", "    shards: 3\n")),
                 "splits.validation.shards"));
  CHECK(contains(parse_error(edit(kText, "version: 1\n", "")), "missing key 'version'"));
}

TEST_CASE("Manifest: to_yaml then parse gives the same manifest, for every encoder") {
  Manifest m;
  SplitInfo train;
  train.name = "train";
  for (int i = 0; i < 3; ++i) {
    ShardInfo s;
    s.file = std::string("train-0000") + std::to_string(i) + ".zst";
    s.documents = 10u + static_cast<std::uint64_t>(i);
    s.bytes = (1ull << 40) + static_cast<std::uint64_t>(i);
    s.compressed_bytes = 12345u * static_cast<std::uint64_t>(i + 1);
    s.checksum = i == 0 ? 0 : i == 1 ? ~0ull : 0x00ff00ff00ff00ffull;
    train.documents += s.documents;
    train.bytes += s.bytes;
    train.shards.push_back(s);
  }
  SplitInfo val;
  val.name = "validation";
  m.splits = {train, val};
  SUBCASE("text") { m.encoder.modality = Modality::text; }
  SUBCASE("image") {
    m.encoder.modality = Modality::image;
    m.encoder.image.image_size = 96;
    m.encoder.image.patch_size = 48;
  }
  SUBCASE("audio") {
    m.encoder.modality = Modality::audio;
    m.encoder.audio.sample_rate = 22050;
  }
  const std::string yaml = m.to_yaml();
  INFO(yaml);
  const Manifest back = Manifest::parse(yaml, "roundtrip.yaml");
  CHECK(back.version == m.version);
  CHECK(back.encoder.modality == m.encoder.modality);
  if (m.encoder.modality == Modality::image) {
    CHECK(back.encoder.image.image_size == 96);
    CHECK(back.encoder.image.patch_size == 48);
  }
  if (m.encoder.modality == Modality::audio) CHECK(back.encoder.audio.sample_rate == 22050);
  REQUIRE(back.splits.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(back.splits[i].name == m.splits[i].name);
    CHECK(back.splits[i].documents == m.splits[i].documents);
    CHECK(back.splits[i].bytes == m.splits[i].bytes);
    REQUIRE(back.splits[i].shards.size() == m.splits[i].shards.size());
    for (std::size_t s = 0; s < m.splits[i].shards.size(); ++s) {
      const ShardInfo& a = back.splits[i].shards[s];
      const ShardInfo& b = m.splits[i].shards[s];
      CHECK(a.file == b.file);
      CHECK(a.documents == b.documents);
      CHECK(a.bytes == b.bytes);
      CHECK(a.compressed_bytes == b.compressed_bytes);
      CHECK(a.checksum == b.checksum);
    }
  }
  CHECK(back.to_yaml() == yaml);
}
