// Files from elsewhere (megabyte-dataset(5), megabyte-checkpoint(5), "what is checked"): a
// shard index, a manifest or a checkpoint whose numbers are hostile is refused with an
// mb::Error before any buffer is sized by those numbers, and sums of sizes never wrap. Each
// case is a file the fuzzers of tests/fuzz/ (or a review for them) found to get through.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "core/error.hpp"
#include "core/file_io.hpp"
#include "core/thread_pool.hpp"
#include "data/dataset.hpp"
#include "data/dataset_writer.hpp"
#include "data/encoders/image.hpp"
#include "data/manifest.hpp"
#include "data/shard_format.hpp"
#include "data/shard_reader.hpp"
#include "error_of.hpp"
#include "model/checkpoint.hpp"
#include "model/config.hpp"
#include "model/load_model.hpp"
#include "model/model.hpp"
#include "model/safetensors.hpp"
#include "safetensors_edit.hpp"
#include "temp_dir.hpp"
#include "training_fixtures.hpp"

namespace fs = std::filesystem;
using namespace mb::data;
using mb::test::contains;
using mb::test::error_of;
using mb::test::TempDir;

namespace {

constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

// One shard of three 100-byte documents in frames of 64 bytes, and its parts: the frames'
// bytes (everything before the index) and the index.
struct OneShard {
  TempDir tmp;
  fs::path dir, path;
  std::vector<std::uint8_t> frames;
  ShardIndex index;
  explicit OneShard(const char* name) : tmp(name), dir(tmp.path / "ds") {
    mb::ThreadPool pool(1);
    DatasetWriterOptions opt;
    opt.shard.frame_bytes = 64;
    DatasetWriter w(dir, EncoderParams{}, opt, pool);
    for (int i = 0; i < 3; ++i)
      w.add_document(Split::train, std::string(1, 'd') + static_cast<char>('0' + i),
                     std::vector<std::uint8_t>(100, static_cast<std::uint8_t>('a' + i)));
    w.commit();
    path = dir / "train-00000.zst";
    const ShardReader r(path, nullptr, 0);
    index = r.index();
    const FrameEntry& last = index.frames.back();
    frames = mb::read_whole_file(path);
    frames.resize(last.compressed_offset + last.compressed_size);
  }
  // Rewrites the shard with `idx` as its index (a valid checksum: only the numbers lie).
  void write(const ShardIndex& idx) const {
    std::vector<std::uint8_t> bytes = frames;
    const std::vector<std::uint8_t> tail = serialize_index(idx);
    bytes.insert(bytes.end(), tail.begin(), tail.end());
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
  }
};

}  // namespace

TEST_CASE("untrusted shard: compressed frame sizes that wrap around 2^64 are refused at open") {
  OneShard s("untrusted-wrap");
  REQUIRE(s.index.frames.size() >= 3);
  // Frame 0 claims almost 2^64 bytes and frame 1 the rest, so that the sizes still sum (mod
  // 2^64) to where the index begins. Reading frame 0 would size a buffer of 2^64 - 5 bytes.
  ShardIndex idx = s.index;
  const std::uint64_t c0 = idx.frames[0].compressed_size, c1 = idx.frames[1].compressed_size;
  idx.frames[0].compressed_size = kMax - 4;
  idx.frames[1].compressed_offset = kMax - 4;
  idx.frames[1].compressed_size = c0 + c1 + 5;
  s.write(idx);
  const std::string msg = error_of([&] {
    const ShardReader r(s.path, nullptr, 0);
    std::vector<std::uint8_t> doc(100);
    r.read(0, 0, doc);
  });
  CHECK(contains(msg, s.path.string()));
  CHECK(contains(msg, "frames do not tile the file"));
}

TEST_CASE("untrusted shard: a frame that claims more bytes than zstd can hold is refused at open") {
  OneShard s("untrusted-ratio");
  // A frame of a few dozen compressed bytes said to hold a terabyte: every document offset
  // after it moves up by as much, so that the index is consistent in itself. Reading a
  // document would size a buffer by it.
  ShardIndex idx = s.index;
  const std::uint64_t more = std::uint64_t{1} << 40;
  idx.frames[0].content_size += more;
  for (std::size_t i = 1; i < idx.frames.size(); ++i) idx.frames[i].content_offset += more;
  for (std::size_t i = 1; i < idx.doc_starts.size(); ++i) idx.doc_starts[i] += more;
  s.write(idx);
  const std::string msg = error_of([&] { const ShardReader r(s.path, nullptr, 0); });
  CHECK(contains(msg, s.path.string() + ": frame 0 at offset 0"));
  CHECK(contains(msg, "cannot hold the " + std::to_string(64 + more) + " bytes it claims"));
}

TEST_CASE("untrusted shard: frame content sizes that wrap around 2^64 are refused") {
  // Two frames of 2^63 and 2^63 + 10 bytes "add up" to the 10 bytes of content.
  ShardIndex idx;
  idx.frames = {{0, 10, 0, std::uint64_t{1} << 63, 0},
                {10, 10, std::uint64_t{1} << 63, (std::uint64_t{1} << 63) + 10, 0}};
  idx.doc_starts = {0, 10};
  idx.doc_names = {"doc"};
  const std::vector<std::uint8_t> frame = serialize_index(idx);
  const std::string msg =
      error_of([&] { parse_index(std::span<const std::uint8_t>(frame).subspan(8), "the index"); });
  CHECK(contains(msg, "the index: corrupt shard index"));
  CHECK(contains(msg, "add up to more than the content size"));
}

TEST_CASE("untrusted shard: an index size near 2^64 in the footer is refused as not fitting") {
  OneShard s("untrusted-footer");
  std::vector<std::uint8_t> bytes = mb::read_whole_file(s.path);
  for (int i = 0; i < 8; ++i)
    bytes[bytes.size() - 16 + i] = static_cast<std::uint8_t>((kMax - 3) >> (8 * i));
  std::ofstream(s.path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  const std::string msg = error_of([&] { const ShardReader r(s.path, nullptr, 0); });
  CHECK(contains(msg, "shard index size " + std::to_string(kMax - 3) + " does not fit the file"));
}

TEST_CASE("untrusted manifest: shard sizes whose sum wraps around 2^64 are refused") {
  // Two shards of 2^63 documents and bytes each: their sums wrap to 0, the split's totals.
  std::string shards;
  for (int i = 0; i < 2; ++i)
    shards += "      - file: train-0000" + std::to_string(i) +
              ".zst\n"
              "        documents: 9223372036854775808\n"
              "        bytes: 9223372036854775808\n"
              "        compressed_bytes: 100\n"
              "        xxh64: 0123456789abcdef\n";
  const std::string text =
      "format: megabyte-dataset\nversion: 1\nmodality: text\nencoder:\n  layout: bytes\n"
      "splits:\n  train:\n    documents: 0\n    bytes: 0\n    shards:\n" +
      shards;
  const std::string msg = error_of([&] { Manifest::parse(text, "dataset.yaml"); });
  CHECK(contains(msg, "dataset.yaml: line "));
  CHECK(contains(msg, "add up to more than 2^64"));
}

TEST_CASE("untrusted checkpoint: a config larger than its file is refused before allocating") {
  // A real checkpoint of the tiny model whose metadata says the model is vast (a global
  // stack 2^15 wide, 96 layers: 1.2 x 10^12 parameters, 5 TB of fp32). The config is what
  // `eval` and `sample` build the model from; the tensors in the file are the tiny model's.
  TempDir tmp("untrusted-ckpt");
  mb::model::Config config;
  config.model = mb::test::tiny_model_config();
  auto model = mb::test::tiny_model(3, 1);
  const std::vector<float> m(model->parameters().buffer_size()), v = m;
  const fs::path ck =
      mb::model::save_checkpoint(tmp.path / "run", config, model->parameters(), m, v, {});
  mb::model::Config vast = config;
  vast.model.global = {4096, 96, 64};
  vast.model.patch_size = 8;
  vast.model.context = 1 << 16;
  mb::test::rewrite_safetensors_metadata(ck / "model.safetensors", [&](auto& meta) {
    meta["config"] = mb::model::config_to_yaml(vast);
  });
  const mb::model::CheckpointInfo info = mb::model::read_checkpoint_info(ck);
  REQUIRE(info.config.model.global.dim == 4096);
  CHECK(mb::model::make_model(info.config.model, 0)->parameters().count() > 1'000'000'000'000ull);
  const std::string msg = error_of([&] {
    mb::model::load_model(ck, info.config.model, 0,
                          mb::backend::make_backend(mb::backend::Device::cpu));
  });
  CHECK(contains(msg, (ck / "model.safetensors").string()));
  CHECK((contains(msg, "has shape") || contains(msg, "tensors, the model has")));
}

TEST_CASE("untrusted image: a header of no pixels is refused, not passed to the resize") {
  // fuzz_image: stb_image decodes a PGM of 3 x 0 pixels to an empty image; its square of
  // side 0 made stb_image_resize abort the process (an assertion) inside `prepare`.
  for (const std::string& header : {std::string("P5\n3 0\n255\n"), std::string("P5\n0 2\n255\n")}) {
    INFO(header);
    const std::vector<std::uint8_t> pgm(header.begin(), header.end());
    mb::data::ImageParams params;
    params.image_size = 8;
    const std::string msg = error_of([&] { encode_image_memory(pgm, params, "empty.pgm"); });
    CHECK(contains(msg, "empty.pgm: cannot decode image"));
  }
}

TEST_CASE("untrusted image: a header claiming more than 2^27 pixels is refused before decoding") {
  // fuzz_image: 56 bytes of BMP header that say 154881 x 1792 pixels, 24 bits each. stb_image
  // decoded it to 830 MB (the missing rows as zeros), and the resize read all of it.
  const std::vector<std::uint8_t> bmp = {
      0x42, 0x4d, 0x36, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x36, 0x00, 0x00, 0x00,
      0x28, 0x00, 0x00, 0x00, 0x01, 0x5d, 0x02, 0x00, 0x00, 0x07, 0x00, 0x00, 0x01, 0x00,
      0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x68, 0x43, 0xbd, 0xe2, 0x98, 0x35, 0x8c, 0x2b,
      0x2b, 0x1e, 0xb1, 0x5c, 0x12, 0xd6, 0x2e, 0x09, 0xe4, 0xa8, 0x83, 0x5e, 0x4b, 0x26};
  mb::data::ImageParams params;
  params.image_size = 8;
  const std::string msg = error_of([&] { encode_image_memory(bmp, params, "bomb.bmp"); });
  CHECK(contains(msg, "bomb.bmp: image of 154881 x 1792 pixels is over the limit of 134217728"));
}

TEST_CASE("untrusted image: a 16-bit PNM is decoded without stb_image's overread") {
  // fuzz_image (CI): "P5 255756 5 52525" and 3 bytes. stb_image converted the 16-bit gray
  // samples to RGB as if they were 8-bit, then read 16-bit samples past the end of that
  // buffer (a heap overflow); the file is also truncated, which stb_image did not notice.
  mb::data::ImageParams params;
  params.image_size = 8;
  const std::string crash = "P5  255756 5 52525\x02" "5\x01\x02";
  const std::vector<std::uint8_t> crash_bytes(crash.begin(), crash.end());
  const std::string msg = error_of([&] { encode_image_memory(crash_bytes, params, "crash.pgm"); });
  CHECK(contains(msg, "crash.pgm: PNM image of 255756 x 5 pixels is truncated"));
  CHECK(contains(msg, "calls for 2557560 bytes of pixels, the file holds 3"));

  // A whole 16-bit image decodes to the high byte of each big-endian sample, gray widened to RGB.
  for (const bool gray : {true, false}) {
    INFO(gray);
    std::string header = std::string(gray ? "P5" : "P6") + "\n# comment\n8 8\n65535\n";
    std::vector<std::uint8_t> file(header.begin(), header.end());
    const int channels = gray ? 1 : 3;
    for (int i = 0; i < 64 * channels; ++i) {
      file.push_back(static_cast<std::uint8_t>(i));         // high byte: the value kept
      file.push_back(static_cast<std::uint8_t>(255 - i));   // low byte: dropped
    }
    const std::vector<std::uint8_t> raster =
        mb::data::patch_unscan(encode_image_memory(file, params, "wide.pnm"), params);
    REQUIRE(raster.size() == 64 * 3);
    for (int i = 0; i < 64 * 3; ++i) CHECK(raster[i] == (gray ? i / 3 : i));
  }
}

TEST_CASE("untrusted image: a truncated 8-bit PNM is refused, not decoded from uninitialised memory") {
  mb::data::ImageParams params;
  params.image_size = 8;
  std::string file = "P6 8 8 255\n" + std::string(8 * 8 * 3 - 1, '\x40');
  const std::vector<std::uint8_t> short_by_one(file.begin(), file.end());
  CHECK(contains(error_of([&] { encode_image_memory(short_by_one, params, "short.ppm"); }),
                 "short.ppm: PNM image of 8 x 8 pixels is truncated: its header calls for 192 "
                 "bytes of pixels, the file holds 191"));
  file.push_back('\x40');
  const std::vector<std::uint8_t> whole(file.begin(), file.end());
  CHECK(encode_image_memory(whole, params, "whole.ppm") == std::vector<std::uint8_t>(192, 0x40));
}
