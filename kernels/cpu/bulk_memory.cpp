// Contiguous chunks of 256 KiB, shared among the threads in a static split; buffers of fewer
// than two chunks stay on the calling thread, outside OpenMP (starting a parallel region costs
// more than writing them: cpu/parallel.hpp).
#include "cpu/bulk_memory.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "cpu/parallel.hpp"

namespace mb::kernels::cpu {
namespace {

constexpr std::size_t kChunkBytes = std::size_t{1} << 18;

// Runs body(offset, length) over [0, bytes) in chunks, on all threads where there are at
// least two chunks.
template <class Body>
void for_each_chunk(std::size_t bytes, Body body) {
  const auto chunks = static_cast<std::int64_t>((bytes + kChunkBytes - 1) / kChunkBytes);
  parallel_for(chunks, chunks > 1, [&](std::int64_t c) {
    const std::size_t at = static_cast<std::size_t>(c) * kChunkBytes;
    body(at, std::min(kChunkBytes, bytes - at));
  });
}

}  // namespace

void zero_bytes(void* dst, std::size_t bytes) {
  char* d = static_cast<char*>(dst);
  for_each_chunk(bytes, [d](std::size_t at, std::size_t n) { std::memset(d + at, 0, n); });
}

void copy_bytes(void* dst, const void* src, std::size_t bytes) {
  char* d = static_cast<char*>(dst);
  const char* s = static_cast<const char*>(src);
  for_each_chunk(bytes, [d, s](std::size_t at, std::size_t n) { std::memcpy(d + at, s + at, n); });
}

}  // namespace mb::kernels::cpu
