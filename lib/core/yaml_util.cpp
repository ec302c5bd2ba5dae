#include "core/yaml_util.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <vector>

#include "core/error.hpp"
#include "core/file_io.hpp"

namespace mb {

std::string yaml_where(const std::string& file, const YAML::Node& node) {
  const YAML::Mark m = node.Mark();
  if (m.line < 0) return file;
  return file + ": line " + std::to_string(m.line + 1);
}

YAML::Node yaml_parse(const std::string& text, const std::string& file) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error(file + ": line " + std::to_string(e.mark.line + 1), "invalid YAML: " + e.msg,
                "fix the syntax at that line");
  }
}

YAML::Node yaml_load_file(const std::string& file) {
  auto bytes = read_whole_file(file);
  return yaml_parse(std::string(bytes.begin(), bytes.end()), file);
}

namespace {
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] =
          std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}
}  // namespace

std::string nearest_key(std::string_view key, std::initializer_list<std::string_view> known) {
  std::string best;
  std::size_t best_d = 4;
  for (auto k : known) {
    std::size_t d = edit_distance(key, k);
    if (d < best_d) {
      best_d = d;
      best = std::string(k);
    }
  }
  return best;
}

void KeyOrigins::add(std::string path, std::string origin) {
  keys_.emplace_back(std::move(path), std::move(origin));
}

const std::string* KeyOrigins::covering(std::string_view path) const {
  for (auto it = keys_.rbegin(); it != keys_.rend(); ++it) {
    const std::string& k = it->first;
    if (k == path ||
        (k.size() > path.size() && k.compare(0, path.size(), path) == 0 && k[path.size()] == '.'))
      return &it->second;
  }
  return nullptr;
}

YamlMap::YamlMap(YAML::Node node, std::string file, std::string context)
    : YamlMap(std::move(node), YamlDocument{std::move(file), {}, nullptr}, std::move(context)) {}

YamlMap::YamlMap(YAML::Node node, YamlDocument doc, std::string context)
    : node_(std::move(node)), doc_(std::move(doc)), context_(std::move(context)) {
  if (!node_.IsMap())
    throw Error(yaml_where(doc_.file, node_),
                context_.empty() ? "expected a mapping of keys to values at the top level"
                                 : "'" + context_ + "' must be a mapping of keys to values");
}

std::string YamlMap::path_of(const std::string& key) const {
  return context_.empty() ? key : context_ + "." + key;
}

std::string YamlMap::section_name() const { return context_.empty() ? "the top level" : context_; }

std::string YamlMap::where(const std::string& key) const {
  const std::string path = path_of(key);
  if (doc_.origins)
    if (const std::string* origin = doc_.origins->covering(path)) return *origin;
  // The key's own line: the value of an empty key (`context:`) has no position of its own
  // (yaml-cpp gives it the next line), nor has a block mapping or list under its key.
  for (const auto& kv : node_)
    if (kv.first.IsScalar() && kv.first.Scalar() == key)
      return yaml_where(doc_.file, kv.first) + ": key '" + path + "'";
  return yaml_where(doc_.file, node_) + ": key '" + path + "'";
}

void YamlMap::allow_only(std::initializer_list<std::string_view> known, const std::string& sub,
                         std::initializer_list<std::string_view> misplaced) const {
  std::vector<std::string> seen;
  for (const auto& kv : node_) {
    if (!kv.first.IsScalar())
      throw Error(yaml_where(doc_.file, kv.first),
                  "a key in " + section_name() + " is not a plain name",
                  "write keys as plain names, as in name: value");
    const std::string key = kv.first.Scalar();
    const std::string path = path_of(key);
    const std::string* origin = doc_.origins ? doc_.origins->covering(path) : nullptr;
    const std::string where = origin ? *origin : yaml_where(doc_.file, kv.first);
    if (std::find(known.begin(), known.end(), key) != known.end()) {
      if (std::find(seen.begin(), seen.end(), key) != seen.end())
        throw Error(where, "key '" + path + "' is given twice", "keep one of them");
      seen.push_back(key);
      continue;
    }
    std::string hint;
    if (std::find(misplaced.begin(), misplaced.end(), key) != misplaced.end()) {
      hint =
          "did you mean '" + path_of(sub) + "." + key + "'? it belongs in section " + path_of(sub);
    } else if (std::string near = nearest_key(key, known); !near.empty()) {
      hint = "did you mean '" + path_of(near) + "'?";
    } else {
      hint = "the keys of " + section_name() + " are:";
      for (auto k : known) hint.append(" ").append(k);
    }
    throw Error(where, "unknown key '" + path + "'", hint);
  }
}

bool YamlMap::has(const std::string& key) const { return static_cast<bool>(node_[key]); }

YAML::Node YamlMap::node(const std::string& key) const {
  YAML::Node n = node_[key];
  if (!n) throw Error(yaml_where(doc_.file, node_), "missing key '" + path_of(key) + "'");
  return n;
}

YamlMap YamlMap::map(const std::string& key) const {
  YAML::Node n = node(key);
  if (!n.IsMap()) {
    const std::string what = "'" + path_of(key) + "' must be a section of keys";
    throw Error(where(key),
                what + (n.IsNull()       ? "; it is empty"
                        : n.IsSequence() ? ", not a list"
                                         : ", not a single value"),
                doc_.manual.empty() ? "" : "see " + doc_.manual + " for its keys");
  }
  return YamlMap(n, doc_, path_of(key));
}

YamlMap YamlMap::optional_map(const std::string& key) const {
  YAML::Node n = node_[key];
  if (!n || n.IsNull()) return YamlMap(YAML::Node(YAML::NodeType::Map), doc_, path_of(key));
  return map(key);
}

YAML::Node YamlMap::scalar(const std::string& key, bool optional) const {
  YAML::Node n = node(key);
  if (n.IsNull())
    throw Error(
        where(key), "'" + path_of(key) + "' has no value",
        optional ? "give it a value, or delete the key to use the default" : "give it a value");
  if (!n.IsScalar())
    throw Error(where(key), "'" + path_of(key) + "' must be a single value",
                doc_.manual.empty() ? "" : "see " + doc_.manual);
  return n;
}

std::string YamlMap::string(const std::string& key) const { return scalar(key, false).Scalar(); }

std::optional<std::string> YamlMap::optional_string(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return scalar(key, true).Scalar();
}

std::uint64_t YamlMap::u64(const std::string& key) const {
  const std::string s = scalar(key, false).Scalar();
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size())
    throw Error(where(key), "expected a non-negative integer, got '" + s + "'");
  return v;
}

std::int64_t YamlMap::i64(const std::string& key) const {
  const std::string s = scalar(key, false).Scalar();
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size())
    throw Error(where(key), "expected an integer, got '" + s + "'");
  return v;
}

double YamlMap::f64(const std::string& key) const {
  const std::string s = scalar(key, false).Scalar();
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || !std::isfinite(v))
    throw Error(where(key), "expected a number, got '" + s + "'");
  return v;
}

bool YamlMap::boolean(const std::string& key) const {
  const std::string s = scalar(key, false).Scalar();
  if (s == "true") return true;
  if (s == "false") return false;
  throw Error(where(key), "expected true or false, got '" + s + "'");
}

}  // namespace mb
