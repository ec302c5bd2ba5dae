// Checks of dataset.yaml's values, shared by the manifest and the encoders, which read their
// own `encoder` map.
#pragma once

#include <cstdint>
#include <string>

#include "core/yaml_util.hpp"

namespace mb::data {

// Throws mb::Error naming the line unless m[key] is `expected`.
void require_value(const YamlMap& m, const std::string& key, const std::string& expected);
// m[key] as an int in 1..max; throws mb::Error naming the line otherwise.
int bounded_int(const YamlMap& m, const std::string& key, std::uint64_t max);

}  // namespace mb::data
