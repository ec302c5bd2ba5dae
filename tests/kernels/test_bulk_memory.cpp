// zero_bytes / copy_bytes: every byte of the range, none outside it, at any thread count.
#include "check.hpp"

#include <omp.h>

#include <cstdint>
#include <vector>

#include "cpu/bulk_memory.hpp"

using namespace mb::kernels::cpu;

namespace {

// Sizes around the 256 KiB chunks (one, two, a partial third), and odd offsets, so that a
// chunk's edge or a thread's share off by one byte shows as a wrong byte.
constexpr std::size_t kChunk = std::size_t{1} << 18;
const std::size_t kSizes[] = {
    0, 1, 63, kChunk - 1, kChunk, kChunk + 1, 2 * kChunk, 2 * kChunk + 13, 5 * kChunk + 4093};

std::vector<unsigned char> pattern(std::size_t n, unsigned seed) {
  std::vector<unsigned char> v(n);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) b = static_cast<unsigned char>((x = x * 1664525u + 1013904223u) >> 24);
  return v;
}

}  // namespace

TEST_CASE("bulk memory: zero_bytes clears exactly the range, at 1, 2 and 3 threads") {
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    for (std::size_t n : kSizes)
      for (std::size_t offset : {std::size_t{0}, std::size_t{3}}) {
        CAPTURE(threads);
        CAPTURE(n);
        CAPTURE(offset);
        auto buf = pattern(n + offset + 8, static_cast<unsigned>(n));
        const auto before = buf;
        zero_bytes(buf.data() + offset, n);
        bool ok = true;
        for (std::size_t i = 0; i < buf.size(); ++i) {
          const bool inside = i >= offset && i < offset + n;
          ok = ok && buf[i] == (inside ? 0 : before[i]);
        }
        CHECK(ok);
      }
  }
  omp_set_num_threads(saved);
}

TEST_CASE("bulk memory: copy_bytes copies exactly the range, at 1, 2 and 3 threads") {
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    for (std::size_t n : kSizes) {
      CAPTURE(threads);
      CAPTURE(n);
      const auto src = pattern(n + 5, 7);
      auto dst = pattern(n + 8, 11);
      const auto before = dst;
      copy_bytes(dst.data() + 1, src.data() + 5, n);
      bool ok = dst[0] == before[0];
      for (std::size_t i = 0; i < n; ++i) ok = ok && dst[1 + i] == src[5 + i];
      for (std::size_t i = n + 1; i < dst.size(); ++i) ok = ok && dst[i] == before[i];
      CHECK(ok);
    }
  }
  omp_set_num_threads(saved);
}
