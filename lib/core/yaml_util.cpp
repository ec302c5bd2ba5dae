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
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
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

YamlMap::YamlMap(YAML::Node node, std::string file, std::string context)
    : node_(std::move(node)), file_(std::move(file)), context_(std::move(context)) {
  if (!node_.IsMap())
    throw Error(yaml_where(file_, node_),
                context_.empty() ? "expected a mapping of keys to values at the top level"
                                 : "'" + context_ + "' must be a mapping of keys to values");
}

std::string YamlMap::path_of(const std::string& key) const {
  return context_.empty() ? key : context_ + "." + key;
}

std::string YamlMap::where(const std::string& key) const {
  YAML::Node n = node_[key];
  return (n ? yaml_where(file_, n) : yaml_where(file_, node_)) + ": key '" + path_of(key) + "'";
}

void YamlMap::allow_only(std::initializer_list<std::string_view> known) const {
  for (const auto& kv : node_) {
    std::string key = kv.first.as<std::string>();
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string hint;
    std::string near = nearest_key(key, known);
    if (!near.empty()) hint = "did you mean '" + path_of(near) + "'?";
    else {
      hint = "known keys here:";
      for (auto k : known) hint.append(" ").append(k);
    }
    throw Error(yaml_where(file_, kv.first), "unknown key '" + path_of(key) + "'", hint);
  }
}

bool YamlMap::has(const std::string& key) const { return static_cast<bool>(node_[key]); }

YAML::Node YamlMap::node(const std::string& key) const {
  YAML::Node n = node_[key];
  if (!n) throw Error(yaml_where(file_, node_), "missing key '" + path_of(key) + "'");
  return n;
}

YamlMap YamlMap::map(const std::string& key) const { return YamlMap(node(key), file_, path_of(key)); }

YAML::Node YamlMap::scalar(const std::string& key) const {
  YAML::Node n = node(key);
  if (!n.IsScalar()) throw Error(where(key), "expected a single value");
  return n;
}

std::string YamlMap::string(const std::string& key) const { return scalar(key).Scalar(); }

std::uint64_t YamlMap::u64(const std::string& key) const {
  const std::string s = scalar(key).Scalar();
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size())
    throw Error(where(key), "expected a non-negative integer, got '" + s + "'");
  return v;
}

std::int64_t YamlMap::i64(const std::string& key) const {
  const std::string s = scalar(key).Scalar();
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size())
    throw Error(where(key), "expected an integer, got '" + s + "'");
  return v;
}

double YamlMap::f64(const std::string& key) const {
  const std::string s = scalar(key).Scalar();
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || !std::isfinite(v))
    throw Error(where(key), "expected a number, got '" + s + "'");
  return v;
}

bool YamlMap::boolean(const std::string& key) const {
  const std::string s = scalar(key).Scalar();
  if (s == "true") return true;
  if (s == "false") return false;
  throw Error(where(key), "expected true or false, got '" + s + "'");
}

}  // namespace mb
