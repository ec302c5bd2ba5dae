// The on-disk layout of one shard (see megabyte-dataset(5)).
//
// A shard is a standard zstd stream: independently compressed frames holding the
// concatenated bytes of its documents, cut every `frame_bytes` of content whatever the
// document boundaries, then one skippable frame (magic 0x184D2A5E) holding the index.
// `zstd -d shard` therefore prints exactly the concatenated documents, and a reader finds
// the index from the fixed-size footer at the very end of the file:
//
//   skippable frame header   u32 magic 0x184D2A5E, u32 payload size
//   payload                  header (48 bytes)
//                            frames    F x {u64 compressed offset, u64 compressed size,
//                                           u64 content offset, u64 content size,
//                                           u64 xxh64 of the compressed frame bytes}
//                            documents (N+1) x u64 content offset of each document, then
//                                           the content size
//                            names     all N u32 name lengths first, then all the
//                                           name bytes, concatenated
//                            footer    u64 xxh64 of the payload before the footer,
//                                      u64 payload size (this footer included),
//                                      8 bytes "MBSHIDX1"
//
// All integers are little-endian.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace mb::data {

inline constexpr std::uint32_t kSkippableMagic = 0x184D2A5E;
inline constexpr std::array<char, 8> kIndexMagic = {'M', 'B', 'S', 'H', 'A', 'R', 'D', '\0'};
inline constexpr std::array<char, 8> kFooterMagic = {'M', 'B', 'S', 'H', 'I', 'D', 'X', '1'};
inline constexpr std::uint32_t kShardVersion = 1;
inline constexpr std::size_t kIndexHeaderBytes = 48;
inline constexpr std::size_t kFrameEntryBytes = 40;
inline constexpr std::size_t kFooterBytes = 24;

struct FrameEntry {
  std::uint64_t compressed_offset = 0;  // from the start of the shard file
  std::uint64_t compressed_size = 0;
  std::uint64_t content_offset = 0;  // in the concatenated documents
  std::uint64_t content_size = 0;
  std::uint64_t checksum = 0;  // xxh64 of the compressed frame bytes
};

struct ShardIndex {
  std::vector<FrameEntry> frames;
  std::vector<std::uint64_t> doc_starts;  // N+1 entries; the last is the content size
  std::vector<std::string> doc_names;     // N entries

  std::uint64_t documents() const { return doc_names.size(); }
  std::uint64_t content_bytes() const { return doc_starts.empty() ? 0 : doc_starts.back(); }
  // Index of the frame holding content byte `offset` (offset < content_bytes()).
  std::size_t frame_of(std::uint64_t offset) const;
};

// The whole skippable frame (header, payload, footer) for an index.
std::vector<std::uint8_t> serialize_index(const ShardIndex& index);

// Parse and check the payload (without the 8-byte skippable header, with the footer).
// Structural errors throw mb::Error naming `where` and the payload offset.
ShardIndex parse_index(std::span<const std::uint8_t> payload, const std::string& where);

// Little-endian helpers shared by the writer and reader.
void put_bytes(std::vector<std::uint8_t>& out, const void* data, std::size_t n);
void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v);
void put_u64(std::vector<std::uint8_t>& out, std::uint64_t v);
std::uint32_t get_u32(const std::uint8_t* p);
std::uint64_t get_u64(const std::uint8_t* p);

}  // namespace mb::data
