// Strict reading of YAML documents (dataset manifests, model configs): every unknown key
// and every bad value is an mb::Error that names the file, the line and the key, and
// suggests the nearest known key for a typo.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace mb {

// Where a YAML node sits: "FILE: line N".
std::string yaml_where(const std::string& file, const YAML::Node& node);

// Parse text (or a file) into a node; a syntax error names file and line.
YAML::Node yaml_parse(const std::string& text, const std::string& file);
YAML::Node yaml_load_file(const std::string& file);

// The key name closest to `key` among `known` (Levenshtein distance <= 3), or "".
std::string nearest_key(std::string_view key, std::initializer_list<std::string_view> known);

// Reading the keys of one mapping; `context` is the dotted path of the mapping ("" for the
// root), used in messages as "context.key".
class YamlMap {
 public:
  YamlMap(YAML::Node node, std::string file, std::string context);

  // Throws for any key not in `known`.
  void allow_only(std::initializer_list<std::string_view> known) const;

  bool has(const std::string& key) const;
  YAML::Node node(const std::string& key) const;       // required
  YamlMap map(const std::string& key) const;           // required mapping
  std::string string(const std::string& key) const;    // required scalar
  std::uint64_t u64(const std::string& key) const;     // required unsigned integer
  std::int64_t i64(const std::string& key) const;
  double f64(const std::string& key) const;
  bool boolean(const std::string& key) const;

  const YAML::Node& yaml() const { return node_; }
  const std::string& file() const { return file_; }
  std::string path_of(const std::string& key) const;   // "context.key"
  std::string where(const std::string& key) const;     // "FILE: line N: key 'context.key'"

 private:
  YAML::Node scalar(const std::string& key) const;
  YAML::Node node_;
  std::string file_, context_;
};

}  // namespace mb
