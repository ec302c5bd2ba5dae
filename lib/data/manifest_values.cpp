#include "data/manifest_values.hpp"

#include "core/error.hpp"

namespace mb::data {

void require_value(const YamlMap& m, const std::string& key, const std::string& expected) {
  if (m.string(key) != expected)
    throw Error(m.where(key), "expected '" + expected + "', got '" + m.string(key) + "'");
}

int bounded_int(const YamlMap& m, const std::string& key, std::uint64_t max) {
  std::uint64_t v = m.u64(key);
  if (v == 0 || v > max)
    throw Error(m.where(key), "value " + std::to_string(v) + " is out of range");
  return static_cast<int>(v);
}

}  // namespace mb::data
