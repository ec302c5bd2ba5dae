// Checksums: XXH64 (libxxhash), the same hash zstd uses for its frame checksums.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace mb {

std::uint64_t xxh64(std::span<const std::uint8_t> bytes, std::uint64_t seed = 0);
std::uint64_t xxh64(std::string_view text, std::uint64_t seed = 0);

// Incremental XXH64 over a stream of chunks.
class Xxh64Stream {
 public:
  explicit Xxh64Stream(std::uint64_t seed = 0);
  ~Xxh64Stream();
  Xxh64Stream(const Xxh64Stream&) = delete;
  Xxh64Stream& operator=(const Xxh64Stream&) = delete;
  void update(std::span<const std::uint8_t> bytes);
  std::uint64_t digest() const;

 private:
  void* state_;
};

// 16 lowercase hex digits, and back (throws mb::Error naming `where` on bad text).
std::string to_hex64(std::uint64_t v);
std::uint64_t parse_hex64(std::string_view text, const std::string& where);

}  // namespace mb
