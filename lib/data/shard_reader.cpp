#include "data/shard_reader.hpp"

#include <zstd.h>

#include <cstring>
#include <memory>

#include "core/error.hpp"
#include "core/hash.hpp"

namespace mb::data {

namespace {
const char* kRecreate = "the shard is damaged; re-create the dataset with `megabyte prepare`";

// A zstd block holds at most 128 KiB of content and takes at least 4 bytes (a 3-byte header
// and one byte of an RLE block), so no zstd data decompresses to more than 32768 times its
// size. An index that says more of a frame is corrupt, and is refused before any buffer is
// sized by it.
constexpr std::uint64_t kMaxZstdExpansion = (std::uint64_t{128} << 10) / 4;

struct DCtxDeleter {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};
}  // namespace

ShardReader::ShardReader(const std::filesystem::path& path, FrameCache* cache,
                         std::uint64_t cache_key_base)
    : file_(path), cache_(cache), key_base_(cache_key_base) {
  const std::string where = path.string();
  const std::uint64_t size = file_.size();
  if (size < kFooterBytes + 8)
    throw Error(where, "too short to be a megabyte shard (" + std::to_string(size) + " bytes)",
                "the file is truncated or is not a shard; re-create the dataset");
  std::uint8_t footer[kFooterBytes];
  file_.read_at(size - kFooterBytes, footer);
  if (std::memcmp(footer + 16, kFooterMagic.data(), kFooterMagic.size()) != 0)
    throw Error(where + ": offset " + std::to_string(size - kFooterBytes),
                "no shard index at the end of the file",
                "the file is truncated or is not a megabyte shard; re-create the dataset");
  const std::uint64_t payload_size = get_u64(footer + 8);
  if (payload_size > size - 8 || payload_size < kIndexHeaderBytes + kFooterBytes)
    throw Error(where,
                "shard index size " + std::to_string(payload_size) + " does not fit the file",
                kRecreate);
  const std::uint64_t frame_start = size - payload_size - 8;
  std::uint8_t header[8];
  file_.read_at(frame_start, header);
  if (get_u32(header) != kSkippableMagic || get_u32(header + 4) != payload_size)
    throw Error(where + ": offset " + std::to_string(frame_start), "bad index frame header",
                kRecreate);
  std::vector<std::uint8_t> payload(payload_size);
  file_.read_at(frame_start + 8, payload);
  index_ = parse_index(payload, where + ": index at offset " + std::to_string(frame_start));
  std::uint64_t expect = 0;
  for (std::size_t i = 0; i < index_.frames.size(); ++i) {
    const FrameEntry& f = index_.frames[i];
    // Sizes are compared with what is left of the file, never summed past it.
    if (f.compressed_offset != expect || f.compressed_size > frame_start - expect)
      throw Error(where, "corrupt shard index: frames do not tile the file", kRecreate);
    if (f.content_size / kMaxZstdExpansion > f.compressed_size)
      throw Error(frame_where(i),
                  "corrupt shard index: " + std::to_string(f.compressed_size) +
                      " compressed bytes cannot hold the " + std::to_string(f.content_size) +
                      " bytes it claims",
                  kRecreate);
    expect += f.compressed_size;
  }
  if (expect != frame_start)
    throw Error(where, "corrupt shard index: frames do not end at the index", kRecreate);
}

std::uint64_t ShardReader::document_size(std::uint64_t doc) const {
  return index_.doc_starts.at(doc + 1) - index_.doc_starts.at(doc);
}

std::string ShardReader::frame_where(std::size_t i) const {
  return file_.path().string() + ": frame " + std::to_string(i) + " at offset " +
         std::to_string(index_.frames[i].compressed_offset);
}

std::vector<std::uint8_t> ShardReader::decompress_frame(std::size_t i) const {
  const FrameEntry& f = index_.frames.at(i);
  std::vector<std::uint8_t> compressed(f.compressed_size);
  file_.read_at(f.compressed_offset, compressed);
  if (xxh64(compressed) != f.checksum)
    throw Error(frame_where(i), "checksum mismatch: the data is corrupt", kRecreate);
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxDeleter> dctx(ZSTD_createDCtx());
  std::vector<std::uint8_t> content(f.content_size);
  const std::size_t n = ZSTD_decompressDCtx(dctx.get(), content.data(), content.size(),
                                            compressed.data(), compressed.size());
  if (ZSTD_isError(n))
    throw Error(frame_where(i), std::string("cannot decompress: ") + ZSTD_getErrorName(n),
                kRecreate);
  if (n != f.content_size)
    throw Error(frame_where(i),
                "decompressed to " + std::to_string(n) + " bytes, the index says " +
                    std::to_string(f.content_size),
                kRecreate);
  return content;
}

FrameBytes ShardReader::frame(std::size_t i) const {
  if (cache_ == nullptr)
    return std::make_shared<const std::vector<std::uint8_t>>(decompress_frame(i));
  return cache_->get(key_base_ + i, [this, i] { return decompress_frame(i); });
}

void ShardReader::read(std::uint64_t doc, std::uint64_t offset, std::span<std::uint8_t> out) const {
  if (doc >= documents())
    throw Error(file_.path().string(), "document " + std::to_string(doc) + " is out of range (" +
                                           std::to_string(documents()) + " documents)");
  const std::uint64_t size = document_size(doc);
  if (offset > size || out.size() > size - offset)
    throw Error(file_.path().string(), "read of " + std::to_string(out.size()) + " bytes at " +
                                           std::to_string(offset) +
                                           " is past the end of document " + std::to_string(doc) +
                                           " (" + std::to_string(size) + " bytes)");
  std::uint64_t pos = index_.doc_starts[doc] + offset;
  std::size_t done = 0;
  while (done < out.size()) {
    const std::size_t fi = index_.frame_of(pos);
    const FrameEntry& f = index_.frames[fi];
    FrameBytes bytes = frame(fi);
    const std::uint64_t in_frame = pos - f.content_offset;
    const std::size_t take = static_cast<std::size_t>(
        std::min<std::uint64_t>(out.size() - done, f.content_size - in_frame));
    std::memcpy(out.data() + done, bytes->data() + in_frame, take);
    done += take;
    pos += take;
  }
}

void ShardReader::verify_frames() const {
  for (std::size_t i = 0; i < index_.frames.size(); ++i) (void)decompress_frame(i);
}

}  // namespace mb::data
