// A shard's index and footer: parse_index on any payload (the skippable frame's contents,
// footer included). Most mutations break the payload's checksum, which parse_index checks
// first; so when the first input byte is odd the target rewrites the footer (checksum and
// size) to match, and the structure behind it is fuzzed too.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "core/hash.hpp"
#include "data/shard_format.hpp"
#include "fuzz_common.hpp"

using namespace mb::data;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const bool repair = data[0] & 1;
  std::vector<std::uint8_t> payload(data + 1, data + size);
  if (repair && payload.size() >= kFooterBytes) {
    const std::size_t body = payload.size() - kFooterBytes;
    std::vector<std::uint8_t> footer;
    put_u64(footer, mb::xxh64(std::span<const std::uint8_t>(payload.data(), body)));
    put_u64(footer, payload.size());
    put_bytes(footer, kFooterMagic.data(), kFooterMagic.size());
    std::memcpy(payload.data() + body, footer.data(), footer.size());
  }
  mb::fuzz::expect_only_mb_errors([&] {
    const ShardIndex index = parse_index(payload, "index");
    // What the reader relies on: every content byte lies in the frame frame_of names, and
    // the documents' bytes lie inside the content.
    const std::uint64_t content = index.content_bytes();
    for (std::uint64_t off : {std::uint64_t{0}, content / 2, content - 1}) {
      if (off >= content) continue;
      const std::size_t fi = index.frame_of(off);
      if (fi >= index.frames.size()) std::abort();
      const FrameEntry& f = index.frames[fi];
      if (off < f.content_offset || off - f.content_offset >= f.content_size) std::abort();
    }
    if (index.doc_starts.size() != index.doc_names.size() + 1) std::abort();
    // What was read writes out as an index that reads back the same (the reserved flags
    // word aside, the same bytes).
    const std::vector<std::uint8_t> frame = serialize_index(index);
    if (frame.size() != payload.size() + 8) std::abort();
    const ShardIndex again =
        parse_index(std::span<const std::uint8_t>(frame).subspan(8), "serialized index");
    if (again.frames.size() != index.frames.size() || again.doc_starts != index.doc_starts ||
        again.doc_names != index.doc_names)
      std::abort();
  });
  return 0;
}
