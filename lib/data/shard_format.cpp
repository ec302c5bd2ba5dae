#include "data/shard_format.hpp"

#include <algorithm>
#include <cstring>

#include "core/error.hpp"
#include "core/hash.hpp"

namespace mb::data {

void put_bytes(std::vector<std::uint8_t>& out, const void* data, std::size_t n) {
  // resize + memcpy rather than insert(): GCC 12 at -O3 warns falsely about the latter.
  const std::size_t at = out.size();
  out.resize(at + n);
  if (n > 0) std::memcpy(out.data() + at, data, n);
}
void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void put_u64(std::vector<std::uint8_t>& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
std::uint32_t get_u32(const std::uint8_t* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
std::uint64_t get_u64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::size_t ShardIndex::frame_of(std::uint64_t offset) const {
  // The first frame whose content ends after `offset`.
  auto it = std::upper_bound(frames.begin(), frames.end(), offset,
                             [](std::uint64_t off, const FrameEntry& f) {
                               return off < f.content_offset + f.content_size;
                             });
  return static_cast<std::size_t>(it - frames.begin());
}

std::vector<std::uint8_t> serialize_index(const ShardIndex& index) {
  std::vector<std::uint8_t> payload;
  payload.reserve(kIndexHeaderBytes + index.frames.size() * kFrameEntryBytes +
                  index.doc_starts.size() * 12 + kFooterBytes);
  put_bytes(payload, kIndexMagic.data(), kIndexMagic.size());
  put_u32(payload, kShardVersion);
  put_u32(payload, 0);  // flags, reserved
  put_u64(payload, index.frames.size());
  put_u64(payload, index.documents());
  put_u64(payload, index.content_bytes());
  std::uint64_t names_bytes = 0;
  for (const auto& n : index.doc_names) names_bytes += n.size();
  put_u64(payload, names_bytes);
  for (const auto& f : index.frames) {
    put_u64(payload, f.compressed_offset);
    put_u64(payload, f.compressed_size);
    put_u64(payload, f.content_offset);
    put_u64(payload, f.content_size);
    put_u64(payload, f.checksum);
  }
  for (auto s : index.doc_starts) put_u64(payload, s);
  for (const auto& n : index.doc_names) put_u32(payload, static_cast<std::uint32_t>(n.size()));
  for (const auto& n : index.doc_names) put_bytes(payload, n.data(), n.size());
  const std::uint64_t digest = xxh64(payload);
  put_u64(payload, digest);
  put_u64(payload, payload.size() + 16);  // payload size including this footer
  put_bytes(payload, kFooterMagic.data(), kFooterMagic.size());
  if (payload.size() > 0xFFFFFFFFu)
    throw Error("shard index",
                "too large for one skippable frame (" + std::to_string(payload.size()) + " bytes)",
                "use a smaller --shard-size");

  std::vector<std::uint8_t> frame;
  frame.reserve(payload.size() + 8);
  put_u32(frame, kSkippableMagic);
  put_u32(frame, static_cast<std::uint32_t>(payload.size()));
  put_bytes(frame, payload.data(), payload.size());
  return frame;
}

namespace {
[[noreturn]] void bad_index(const std::string& where, const std::string& what) {
  throw Error(where, "corrupt shard index: " + what,
              "the shard is damaged; re-create the dataset with `megabyte prepare`");
}
}  // namespace

ShardIndex parse_index(std::span<const std::uint8_t> payload, const std::string& where) {
  if (payload.size() < kIndexHeaderBytes + kFooterBytes) bad_index(where, "too short");
  const std::uint8_t* p = payload.data();
  const std::size_t body = payload.size() - kFooterBytes;
  if (std::memcmp(p, kIndexMagic.data(), kIndexMagic.size()) != 0) bad_index(where, "bad magic");
  if (std::memcmp(p + body + 16, kFooterMagic.data(), kFooterMagic.size()) != 0)
    bad_index(where, "bad footer magic");
  if (get_u64(p + body + 8) != payload.size())
    bad_index(where, "footer size does not match the index size");
  if (xxh64(payload.first(body)) != get_u64(p + body)) bad_index(where, "checksum mismatch");
  const std::uint32_t version = get_u32(p + 8);
  if (version != kShardVersion)
    throw Error(where, "shard format version " + std::to_string(version) + " is not supported",
                "this megabyte reads version " + std::to_string(kShardVersion) +
                    "; use a matching megabyte");
  const std::uint64_t nframes = get_u64(p + 16), ndocs = get_u64(p + 24);
  const std::uint64_t content = get_u64(p + 32), names_bytes = get_u64(p + 40);
  // Guard every size before multiplying, so a hostile index cannot overflow the check.
  const std::uint64_t limit = body;
  if (nframes > limit / kFrameEntryBytes || ndocs > limit / 12 || names_bytes > limit)
    bad_index(where, "counts exceed the index size");
  const std::uint64_t need =
      kIndexHeaderBytes + nframes * kFrameEntryBytes + (ndocs + 1) * 8 + ndocs * 4 + names_bytes;
  if (need != body) bad_index(where, "size does not match its counts");

  ShardIndex idx;
  std::size_t off = kIndexHeaderBytes;
  idx.frames.resize(nframes);
  std::uint64_t expect_content = 0;
  for (auto& f : idx.frames) {
    f.compressed_offset = get_u64(p + off);
    f.compressed_size = get_u64(p + off + 8);
    f.content_offset = get_u64(p + off + 16);
    f.content_size = get_u64(p + off + 24);
    f.checksum = get_u64(p + off + 32);
    off += kFrameEntryBytes;
    if (f.content_offset != expect_content) bad_index(where, "frames are not contiguous");
    if (f.content_size > content - expect_content)
      bad_index(where, "frame sizes add up to more than the content size");
    expect_content += f.content_size;
  }
  if (expect_content != content) bad_index(where, "frame sizes do not add up to the content size");
  idx.doc_starts.resize(ndocs + 1);
  for (auto& s : idx.doc_starts) {
    s = get_u64(p + off);
    off += 8;
  }
  if (idx.doc_starts.front() != 0 || idx.doc_starts.back() != content ||
      !std::is_sorted(idx.doc_starts.begin(), idx.doc_starts.end()))
    bad_index(where, "document offsets are out of order");
  std::vector<std::uint32_t> lens(ndocs);
  std::uint64_t total_names = 0;
  for (auto& l : lens) {
    l = get_u32(p + off);
    off += 4;
    total_names += l;
  }
  if (total_names != names_bytes) bad_index(where, "name lengths do not add up");
  idx.doc_names.reserve(ndocs);
  for (auto l : lens) {
    idx.doc_names.emplace_back(reinterpret_cast<const char*>(p + off), l);
    off += l;
  }
  return idx;
}

}  // namespace mb::data
