// A whole shard through ShardReader: the footer, the index, every frame, every document and
// byte ranges across frame boundaries. The input is the shard file. Checksums stop most
// mutations at the first check, so when the file's last byte is odd the target first
// repairs them (each frame's xxh64 in the index, the index's own checksum, size and frame
// header) and the index's structure and the zstd frames behind it are fuzzed too; the last
// byte is part of the footer magic in a real shard ('1', odd), so seeds take this path.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "core/hash.hpp"
#include "data/frame_cache.hpp"
#include "data/shard_format.hpp"
#include "data/shard_reader.hpp"
#include "fuzz_common.hpp"

using namespace mb::data;

namespace {

void put_u64_at(std::vector<std::uint8_t>& v, std::size_t at, std::uint64_t x) {
  for (int i = 0; i < 8; ++i) v[at + i] = static_cast<std::uint8_t>(x >> (8 * i));
}
void put_u32_at(std::vector<std::uint8_t>& v, std::size_t at, std::uint32_t x) {
  for (int i = 0; i < 4; ++i) v[at + i] = static_cast<std::uint8_t>(x >> (8 * i));
}

// Rewrites the checksums a corrupt shard would fail on, where the layout lets it find them.
void repair(std::vector<std::uint8_t>& f) {
  const std::size_t size = f.size();
  if (size < kFooterBytes + 8) return;
  const std::uint64_t payload_size = get_u64(f.data() + size - 16);
  if (payload_size < kIndexHeaderBytes + kFooterBytes || payload_size > size - 8) return;
  const std::size_t start = size - payload_size;  // the payload's first byte
  put_u32_at(f, start - 8, kSkippableMagic);
  put_u32_at(f, start - 4, static_cast<std::uint32_t>(payload_size));
  const std::size_t body = size - kFooterBytes;
  const std::uint64_t nframes = get_u64(f.data() + start + 16);
  for (std::uint64_t i = 0; i < nframes; ++i) {
    const std::size_t at = start + kIndexHeaderBytes + i * kFrameEntryBytes;
    if (at + kFrameEntryBytes > body) break;
    const std::uint64_t off = get_u64(f.data() + at), len = get_u64(f.data() + at + 8);
    if (off > size || len > size - off) continue;
    put_u64_at(f, at + 32, mb::xxh64(std::span<const std::uint8_t>(f.data() + off, len)));
  }
  put_u64_at(f, body, mb::xxh64(std::span<const std::uint8_t>(f.data() + start, body - start)));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> file(data, data + size);
  if (size > 0 && (data[size - 1] & 1)) repair(file);
  const auto path = mb::fuzz::write_scratch("shard.zst", file);
  mb::fuzz::expect_only_mb_errors([&] {
    FrameCache cache(1 << 20);
    const ShardReader reader(path, &cache, 0);
    const std::uint64_t docs = std::min<std::uint64_t>(reader.documents(), 64);
    std::vector<std::uint8_t> out;
    for (std::uint64_t d = 0; d < docs; ++d) {
      const std::uint64_t n = reader.document_size(d);
      // Every document whole (the reader bounds what the index may claim by the file's size).
      out.resize(n + 1);
      reader.read(d, 0, std::span(out).first(n));
      // Ranges: the last byte, a range through the middle, an empty read at the end.
      if (n > 0) reader.read(d, n - 1, std::span(out).first(1));
      if (n > 2) reader.read(d, n / 3, std::span(out).first(n / 3));
      reader.read(d, n, std::span(out).first(0));
      // Past the end: refused.
      bool refused = false;
      try {
        reader.read(d, n, std::span(out.data(), 1));
      } catch (const mb::Error&) {
        refused = true;
      }
      if (!refused) std::abort();
    }
    reader.verify_frames();
  });
  return 0;
}
