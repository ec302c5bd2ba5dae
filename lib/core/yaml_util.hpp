// Strict reading of YAML documents (dataset manifests, model configs): every unknown key
// and every bad value is an mb::Error that names the file, the line and the key (or the
// command-line option that set the key), and suggests the nearest known key for a typo.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mb {

// Where a YAML node sits: "FILE: line N".
std::string yaml_where(const std::string& file, const YAML::Node& node);

// Parse text (or a file) into a node; a syntax error names file and line.
YAML::Node yaml_parse(const std::string& text, const std::string& file);
YAML::Node yaml_load_file(const std::string& file);

// The key name closest to `key` among `known` (Levenshtein distance <= 3), or "".
std::string nearest_key(std::string_view key, std::initializer_list<std::string_view> known);

// Keys written into a tree after it was read from its file (a command line's `--set KEY=VALUE`).
// The file holds no line for them, so an error about such a key, or about one under it, names
// where it came from instead.
class KeyOrigins {
 public:
  // `path` is dotted ("train.optimizer.lr"); `origin` is what messages name ("--set train.lr").
  void add(std::string path, std::string origin);
  // The origin of the latest key that set `path` itself or a key under it; null if none did.
  const std::string* covering(std::string_view path) const;

 private:
  std::vector<std::pair<std::string, std::string>> keys_;  // (path, origin), in order
};

// What every mapping of one document shares.
struct YamlDocument {
  std::string file;                     // named in every message
  std::string manual;                   // the page documenting the keys, for hints; may be ""
  const KeyOrigins* origins = nullptr;  // keys set from outside the file; outlives the maps
};

// Reading the keys of one mapping; `context` is the dotted path of the mapping ("" for the
// root), used in messages as "context.key".
class YamlMap {
 public:
  YamlMap(YAML::Node node, std::string file, std::string context);
  YamlMap(YAML::Node node, YamlDocument doc, std::string context);
  YamlMap(const YamlMap&) = default;
  // Assigning a YAML::Node overwrites the node it points at, inside the tree: never wanted.
  YamlMap& operator=(const YamlMap&) = delete;

  // Throws for a key not in `known`, a key given twice and a key that is not a plain name. A
  // key of subsection `sub` (one of `misplaced`) found at this level is pointed to `sub`.
  void allow_only(std::initializer_list<std::string_view> known, const std::string& sub = {},
                  std::initializer_list<std::string_view> misplaced = {}) const;

  bool has(const std::string& key) const;
  YAML::Node node(const std::string& key) const;  // required
  YamlMap map(const std::string& key) const;      // required mapping
  // A mapping that may be left out: absent or empty (`local:` and nothing under it) reads as
  // a mapping of no keys, so every key in it takes its default.
  YamlMap optional_map(const std::string& key) const;
  std::string string(const std::string& key) const;                          // required scalar
  std::optional<std::string> optional_string(const std::string& key) const;  // absent: nullopt
  std::uint64_t u64(const std::string& key) const;  // required unsigned integer
  std::int64_t i64(const std::string& key) const;
  double f64(const std::string& key) const;
  bool boolean(const std::string& key) const;

  const YAML::Node& yaml() const { return node_; }
  const std::string& file() const { return doc_.file; }
  std::string path_of(const std::string& key) const;  // "context.key"
  // "FILE: line N: key 'context.key'" with the line of the key itself (or of this mapping
  // when the key is absent), or the origin of a key set from outside the file.
  std::string where(const std::string& key) const;

 private:
  YAML::Node scalar(const std::string& key, bool optional) const;
  std::string section_name() const;  // for messages: "the top level" or the context
  YAML::Node node_;
  YamlDocument doc_;
  std::string context_;
};

}  // namespace mb
