#include "core/hash.hpp"

#include <xxhash.h>

#include <cstdio>

#include "core/error.hpp"

namespace mb {

std::uint64_t xxh64(std::span<const std::uint8_t> bytes, std::uint64_t seed) {
  return XXH64(bytes.data(), bytes.size(), seed);
}
std::uint64_t xxh64(std::string_view text, std::uint64_t seed) {
  return XXH64(text.data(), text.size(), seed);
}

Xxh64Stream::Xxh64Stream(std::uint64_t seed) : state_(XXH64_createState()) {
  XXH64_reset(static_cast<XXH64_state_t*>(state_), seed);
}
Xxh64Stream::~Xxh64Stream() { XXH64_freeState(static_cast<XXH64_state_t*>(state_)); }
void Xxh64Stream::update(std::span<const std::uint8_t> bytes) {
  XXH64_update(static_cast<XXH64_state_t*>(state_), bytes.data(), bytes.size());
}
std::uint64_t Xxh64Stream::digest() const {
  return XXH64_digest(static_cast<XXH64_state_t*>(state_));
}

std::string to_hex64(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::uint64_t parse_hex64(std::string_view text, const std::string& where) {
  if (text.size() != 16)
    throw Error(where, "expected 16 hex digits, got '" + std::string(text) + "'");
  std::uint64_t v = 0;
  for (char c : text) {
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      throw Error(where, "expected 16 hex digits, got '" + std::string(text) + "'");
    v = (v << 4) | static_cast<std::uint64_t>(d);
  }
  return v;
}

}  // namespace mb
