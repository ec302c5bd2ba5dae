// Reading, checking and writing run configs. The YAML tree is read section by section with the
// strict helpers of core/yaml_util; `--set` overrides are written into the tree before it is
// read, and remembered, so that an error about an overridden key names "--set KEY" instead of
// a line of the file. The bounds of every key live in one place (the k...Range constants) and
// serve both the reader and validate_config, so a config built in code is held to the same
// rules as one read from a file.
#include "model/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/file_io.hpp"
#include "core/yaml_util.hpp"

namespace mb::model {

namespace {

constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kIntMax = std::numeric_limits<int>::max();

// Whole-number keys: the closed range [lo, hi].
struct IntRange {
  std::int64_t lo, hi;
};
// T up to 2^24 bytes: 13 times the paper's longest sequences (1.2M bytes, ImageNet 640), and
// any byte offset within a batch of windows still fits 64 bits with room to spare.
constexpr IntRange kContextRange{1, std::int64_t{1} << 24};
constexpr IntRange kPatchRange{1, std::int64_t{1} << 24};
// Stack widths (and so D_G, D_L and the transformer's width) up to 65536: 16 times the
// paper's widest model (D = 4096), and every matrix dimension still fits an int.
constexpr std::int64_t kMaxWidth = 65536;
constexpr IntRange kDimRange{1, kMaxWidth};
constexpr IntRange kLayersRange{1, 1024};
constexpr IntRange kHeadsRange{1, kMaxWidth};
constexpr IntRange kFfnRange{1, 64};
constexpr IntRange kBatchRange{1, std::int64_t{1} << 20};
constexpr IntRange kStepsRange{1, kInt64Max};
constexpr IntRange kWarmupRange{0, kInt64Max};             // and at most train.steps
constexpr IntRange kEveryRange{0, kInt64Max};              // 0: only at the end
constexpr IntRange kChunkRange{0, std::int64_t{1} << 30};  // 0: all patches at once
constexpr IntRange kZeroRange{0, 1};  // ZeRO stages: 0 (none) or 1 (sharded optimizer state)
constexpr IntRange kLogRange{1, kInt64Max};
constexpr IntRange kKeepRange{1, kIntMax};

// Real-valued keys: an interval whose ends may be open; hi = infinity for no upper bound.
struct RealRange {
  double lo, hi;
  bool lo_open, hi_open;
};
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr RealRange kPositive{0, kInf, true, true};
constexpr RealRange kNonNegative{0, kInf, false, true};
constexpr RealRange kProbability{0, 1, false, true};  // [0, 1): betas, dropout

std::string describe(const IntRange& r) {
  if (r.hi == kInt64Max || r.hi == kIntMax)
    return "a whole number of at least " + std::to_string(r.lo);
  return "a whole number from " + std::to_string(r.lo) + " to " + std::to_string(r.hi);
}

std::string shortest(double v) {
  char buf[32];
  return std::string(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

std::string describe(const RealRange& r) {
  const std::string lo = shortest(r.lo);
  if (r.hi == kInf) return r.lo_open ? "a number greater than " + lo : "a number of at least " + lo;
  return "a number from " + lo + " up to" + (r.hi_open ? ", but not including, " : " ") +
         shortest(r.hi);
}

bool contains(const RealRange& r, double v) {
  if (std::isnan(v)) return false;
  if (r.lo_open ? v <= r.lo : v < r.lo) return false;
  if (r.hi_open ? v >= r.hi : v > r.hi) return false;
  return true;
}

// Shortest text that reads back as exactly the same float or double (to_chars guarantees the
// round trip), with a '.' so that YAML 1.1 readers (PyYAML) also take it for a number:
// "1e-05" becomes "1.0e-05", "1" becomes "1.0".
template <class Real>
std::string format_real(Real v) {
  char buf[64];
  std::string s(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
  if (s.find_first_of(".ni") != std::string::npos) return s;  // has a point, or inf/nan
  const auto e = s.find('e');
  if (e == std::string::npos) return s + ".0";
  return s.insert(e, ".0");
}

void check_int(const std::string& where, std::string_view path, std::int64_t v, const IntRange& r) {
  if (v < r.lo || v > r.hi)
    throw Error(where, std::string(path) + " is " + std::to_string(v) + ", out of range",
                "use " + describe(r));
}

template <class Real>
void check_real(const std::string& where, std::string_view path, Real v, const RealRange& r) {
  if (!contains(r, static_cast<double>(v)))
    throw Error(where, std::string(path) + " is " + format_real(v) + ", out of range",
                "use " + describe(r));
}

ModelKind parse_kind(const std::string& s, const std::string& where) {
  if (s == "megabyte") return ModelKind::megabyte;
  if (s == "transformer") return ModelKind::transformer;
  const std::string near = nearest_key(s, {"megabyte", "transformer"});
  throw Error(
      where, "unknown model kind '" + s + "'",
      (near.empty() ? "" : "did you mean '" + near + "'? ") + "use megabyte or transformer");
}

Activation parse_activation(const std::string& s, const std::string& where) {
  if (s == "relu") return Activation::relu;
  if (s == "gelu") return Activation::gelu;
  const std::string near = nearest_key(s, {"relu", "gelu"});
  throw Error(where, "unknown activation '" + s + "'",
              (near.empty() ? "" : "did you mean '" + near + "'? ") + "use relu or gelu");
}

Recompute parse_recompute(const std::string& s, const std::string& where) {
  for (Recompute r : {Recompute::none, Recompute::global, Recompute::local, Recompute::all})
    if (s == recompute_name(r)) return r;
  const std::string near = nearest_key(s, {"none", "global", "local", "all"});
  throw Error(where, "unknown recompute setting '" + s + "'",
              (near.empty() ? "" : "did you mean '" + near + "'? ") +
                  "use none, global, local (megabyte only) or all");
}

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return "";
  const auto e = s.find_last_not_of(" \t");
  return std::string(s.substr(b, e - b + 1));
}

// Writes one "a.b.c=value" into the tree, creating the sections on the way.
void apply_override(YAML::Node& root, const std::string& arg, KeyOrigins& origins) {
  const std::string example =
      "write --set KEY=VALUE with the key's sections joined by dots, e.g. "
      "--set train.optimizer.lr=3e-4";
  const auto eq = arg.find('=');
  if (eq == std::string::npos)
    throw Error("--set " + arg, "expected KEY=VALUE, found no '='", example);
  const std::string key = trim(std::string_view(arg).substr(0, eq));
  const std::string text = arg.substr(eq + 1);
  if (key.empty()) throw Error("--set " + arg, "the key before '=' is empty", example);
  std::vector<std::string> parts;
  for (std::size_t at = 0;;) {
    const auto dot = key.find('.', at);
    parts.push_back(key.substr(at, dot == std::string::npos ? std::string::npos : dot - at));
    if (dot == std::string::npos) break;
    at = dot + 1;
  }
  for (const auto& p : parts)
    if (p.empty())
      throw Error("--set " + arg, "'" + key + "' has an empty part between dots", example);

  const std::string where = "--set " + key;
  YAML::Node value;
  try {
    value = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error(where, "the value '" + text + "' is not valid YAML: " + e.msg,
                "quote the value if it holds YAML punctuation");
  }
  if (!value || value.IsNull())
    throw Error(where, "no value after '='", "write --set " + key + "=VALUE");
  if (!value.IsScalar())
    throw Error(
        where, "the value '" + text + "' is not a single value",
        "--set sets one key; set a key inside a section with dots, e.g. --set model.global.dim=64");

  // Node handles share what they point at: reset() moves the handle, plain assignment would
  // overwrite the node it points at.
  YAML::Node node = root;
  std::string path;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    path += (i ? "." : "") + parts[i];
    YAML::Node child = node[parts[i]];
    if (!child.IsDefined() || child.IsNull()) {
      node[parts[i]] = YAML::Node(YAML::NodeType::Map);
      child.reset(node[parts[i]]);
    } else if (!child.IsMap()) {
      throw Error(where, "'" + path + "' is a single value, not a section with keys",
                  "set it directly: --set " + path + "=VALUE");
    }
    node.reset(child);
  }
  // A fresh scalar carries no position, so no error can point at a line of the file for it.
  node[parts.back()] = YAML::Node(value.Scalar());
  origins.add(key, where);
}

// The value of `key`, read strictly (YamlMap names the file, line and key, or the `--set` that
// put the key there, in every error), and checked against the key's range; an absent key
// leaves `out` at its default.
//
// Whole numbers in plain decimal digits (an optional sign): "1e6" and "4.0" are refused, so
// a typo never silently truncates.
template <class Int>
void read(const YamlMap& map, const std::string& key, Int& out, const IntRange& range) {
  const std::optional<std::string> text = map.optional_string(key);
  if (!text) return;
  const std::string& s = *text;
  const std::string where = map.where(key), path = map.path_of(key);
  const char* first = s.data() + (!s.empty() && s[0] == '+' ? 1 : 0);
  const char* last = s.data() + s.size();
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(first, last, v);
  if (ec == std::errc::result_out_of_range)
    throw Error(where, path + " is " + s + ", out of range", "use " + describe(range));
  if (ec != std::errc() || end != last) {
    double real = 0;
    auto [rend, rec] = std::from_chars(first, last, real);
    const bool numeric = rec == std::errc() && rend == last;
    throw Error(where, "expected a whole number for " + path + ", got '" + s + "'",
                numeric ? "write it in plain digits, e.g. 1000000 rather than 1e6 or 1000000.0"
                        : "use " + describe(range));
  }
  check_int(where, path, v, range);
  out = static_cast<Int>(v);
}

void read(const YamlMap& map, const std::string& key, std::uint64_t& out) {
  const std::optional<std::string> text = map.optional_string(key);
  if (!text) return;
  const std::string& s = *text;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc() || end != s.data() + s.size())
    throw Error(map.where(key),
                "expected a whole number from 0 to 18446744073709551615 for " + map.path_of(key) +
                    ", got '" + s + "'",
                "write it in plain digits, e.g. 1");
}

// Numbers in decimal or scientific notation, parsed directly at the field's precision so that
// what config_to_yaml writes reads back bit for bit.
template <class Real>
void read(const YamlMap& map, const std::string& key, Real& out, const RealRange& range) {
  const std::optional<std::string> text = map.optional_string(key);
  if (!text) return;
  const std::string& s = *text;
  const std::string where = map.where(key), path = map.path_of(key);
  const char* first = s.data() + (!s.empty() && s[0] == '+' ? 1 : 0);
  const char* last = s.data() + s.size();
  Real v = 0;
  auto [end, ec] = std::from_chars(first, last, v);
  if (ec == std::errc::result_out_of_range)
    throw Error(where,
                path + " is " + s + ", beyond the range of a " + (sizeof(Real) == 4 ? "32" : "64") +
                    "-bit float",
                "use " + describe(range));
  if (ec != std::errc() || end != last || !std::isfinite(v))
    throw Error(where, "expected a number for " + path + ", got '" + s + "'",
                "use " + describe(range) + ", e.g. 0.1 or 3e-4");
  check_real(where, path, v, range);
  out = v;
}

void read_stack(const YamlMap& s, StackConfig& stack) {
  s.allow_only({"dim", "layers", "heads"});
  read(s, "dim", stack.dim, kDimRange);
  read(s, "layers", stack.layers, kLayersRange);
  read(s, "heads", stack.heads, kHeadsRange);
}

void read_model(const YamlMap& s, ModelConfig& m) {
  s.allow_only({"kind", "context", "patch_size", "global", "local", "ffn_multiplier", "activation",
                "dropout", "init_std", "layernorm_eps"});
  if (const auto kind = s.optional_string("kind")) m.kind = parse_kind(*kind, s.where("kind"));
  read(s, "context", m.context, kContextRange);
  if (m.kind == ModelKind::transformer) {
    // The baseline reads one byte at a time: P is 1 and there is no local model. Refusing the
    // keys (rather than ignoring them) keeps a file from claiming a shape it does not have.
    for (const char* key : {"patch_size", "local"})
      if (s.has(key))
        throw Error(s.where(key), "model." + std::string(key) + " is a key of kind megabyte only",
                    "delete it: with model.kind transformer there is one stack, model.global, over "
                    "single bytes");
    m.patch_size = 1;
  } else {
    read(s, "patch_size", m.patch_size, kPatchRange);
  }
  read_stack(s.optional_map("global"), m.global);
  if (m.kind == ModelKind::megabyte) read_stack(s.optional_map("local"), m.local);
  read(s, "ffn_multiplier", m.ffn_multiplier, kFfnRange);
  if (const auto activation = s.optional_string("activation"))
    m.activation = parse_activation(*activation, s.where("activation"));
  read(s, "dropout", m.dropout, kProbability);
  read(s, "init_std", m.init_std, kPositive);
  read(s, "layernorm_eps", m.layernorm_eps, kPositive);
}

void read_data(const YamlMap& s, DataConfig& d) {
  s.allow_only({"modality"});
  if (const auto modality = s.optional_string("modality"))
    d.modality = data::parse_modality(*modality, s.where("modality"));
}

void read_optimizer(const YamlMap& s, OptimizerConfig& o) {
  s.allow_only(
      {"lr", "beta1", "beta2", "eps", "weight_decay", "grad_clip", "warmup_steps", "decay_power"});
  read(s, "lr", o.lr, kPositive);
  read(s, "beta1", o.beta1, kProbability);
  read(s, "beta2", o.beta2, kProbability);
  read(s, "eps", o.eps, kPositive);
  read(s, "weight_decay", o.weight_decay, kNonNegative);
  read(s, "grad_clip", o.grad_clip, kNonNegative);
  read(s, "warmup_steps", o.warmup_steps, kWarmupRange);
  read(s, "decay_power", o.decay_power, kNonNegative);
}

void read_train(const YamlMap& s, TrainConfig& t) {
  s.allow_only(
      {"seed", "batch_size", "grad_accumulation", "steps", "optimizer", "eval_every", "eval_bytes",
       "checkpoint_every", "keep_checkpoints", "log_every", "recompute", "local_chunk", "zero"},
      "optimizer",
      {"lr", "beta1", "beta2", "eps", "weight_decay", "grad_clip", "warmup_steps", "decay_power"});
  read(s, "seed", t.seed);
  read(s, "batch_size", t.batch_size, kBatchRange);
  read(s, "grad_accumulation", t.grad_accumulation, kBatchRange);
  read(s, "steps", t.steps, kStepsRange);
  read_optimizer(s.optional_map("optimizer"), t.optimizer);
  read(s, "eval_every", t.eval_every, kEveryRange);
  read(s, "eval_bytes", t.eval_bytes, kEveryRange);
  read(s, "checkpoint_every", t.checkpoint_every, kEveryRange);
  read(s, "keep_checkpoints", t.keep_checkpoints, kKeepRange);
  read(s, "log_every", t.log_every, kLogRange);
  if (const auto recompute = s.optional_string("recompute"))
    t.recompute = parse_recompute(*recompute, s.where("recompute"));
  read(s, "local_chunk", t.local_chunk, kChunkRange);
  read(s, "zero", t.zero, kZeroRange);
}

// Where the keys of a whole config came from, for the checks that look at several keys: an
// error names the key's `--set`, its line in the file, or just the file where the key is
// absent and took its default.
struct Locator {
  std::function<std::string(std::string_view path)> where;
  std::function<bool(std::string_view path)> overridden;
  std::function<bool(std::string_view path)> given;  // in the file or by --set

  // Of keys that together break a rule, the one to name: the one the user just set with --set,
  // else one the file gives, else the first.
  std::string blame(std::initializer_list<std::string_view> paths) const {
    for (auto p : paths)
      if (overridden(p)) return where(p);
    for (auto p : paths)
      if (given(p)) return where(p);
    return where(*paths.begin());
  }
};

// The mapping that holds the last part of a dotted path; an absent section on the way reads
// as one of no keys.
YamlMap parent_of(const YamlMap& map, std::string_view path, std::string& last) {
  const auto dot = path.find('.');
  if (dot == std::string_view::npos) {
    last = std::string(path);
    return map;
  }
  return parent_of(map.optional_map(std::string(path.substr(0, dot))), path.substr(dot + 1), last);
}

// After the whole tree has been read, so every section on the way is a mapping or absent.
Locator tree_locator(const YamlMap& top, const KeyOrigins& origins) {
  Locator loc;
  loc.overridden = [&origins](std::string_view path) { return origins.covering(path) != nullptr; };
  loc.given = [top](std::string_view path) {
    std::string last;
    return parent_of(top, path, last).has(last);
  };
  loc.where = [top](std::string_view path) {
    std::string last;
    const YamlMap parent = parent_of(top, path, last);
    if (parent.has(last)) return parent.where(last);
    return top.file() + ": key '" + std::string(path) + "'";
  };
  return loc;
}

// The divisor of t nearest to p, to suggest a patch size.
int nearest_divisor(int t, int p) {
  p = std::clamp(p, 1, t);
  for (int d = 0; d < t; ++d) {
    if (p - d >= 1 && t % (p - d) == 0) return p - d;
    if (p + d <= t && t % (p + d) == 0) return p + d;
  }
  return 1;
}

// A stack's heads must split its width evenly; the head size (width / heads) has no upper
// limit of its own: the CPU attention kernel takes any head size d > 0 (it pads d to its tile
// width in scratch memory), so only kMaxWidth bounds it.
void check_stack(const Locator& loc, const std::string& name, const StackConfig& s,
                 std::int64_t width, const std::string& width_text) {
  const std::string dim = name + ".dim", layers = name + ".layers", heads = name + ".heads";
  check_int(loc.where(dim), dim, s.dim, kDimRange);
  check_int(loc.where(layers), layers, s.layers, kLayersRange);
  check_int(loc.where(heads), heads, s.heads, kHeadsRange);
  // The global width also depends on P.
  const std::string patch = name == "model.global" ? "model.patch_size" : dim;
  if (width > kMaxWidth)
    throw Error(loc.blame({dim, patch}),
                "the stack's width " + width_text + " = " + std::to_string(width) +
                    " is more than " + std::to_string(kMaxWidth),
                "make " + name + ".dim smaller");
  if (width % s.heads != 0)
    throw Error(loc.blame({heads, dim, patch}),
                std::to_string(s.heads) + " heads do not divide the stack's width " + width_text +
                    " = " + std::to_string(width),
                "choose a number of heads that divides " + std::to_string(width) +
                    "; each head is width/heads wide");
}

void check_config(const Config& c, const Locator& loc) {
  const auto& where = loc.where;
  const ModelConfig& m = c.model;
  check_int(where("model.context"), "model.context", m.context, kContextRange);
  if (m.kind == ModelKind::megabyte) {
    check_int(where("model.patch_size"), "model.patch_size", m.patch_size, kPatchRange);
    if (m.context % m.patch_size != 0)
      throw Error(loc.blame({"model.patch_size", "model.context"}),
                  "patch_size P = " + std::to_string(m.patch_size) +
                      " does not divide context T = " + std::to_string(m.context),
                  "T must hold a whole number of patches: use a divisor of " +
                      std::to_string(m.context) + ", e.g. " +
                      std::to_string(nearest_divisor(m.context, m.patch_size)));
    check_stack(loc, "model.global", m.global, std::int64_t{m.patch_size} * m.global.dim,
                "P*D_G = " + std::to_string(m.patch_size) + "*" + std::to_string(m.global.dim));
    check_stack(loc, "model.local", m.local, m.local.dim, "D_L");
  } else {
    // What parse_config makes of a transformer; anything else would not survive a round trip
    // through config_to_yaml, which leaves these keys out.
    if (m.patch_size != 1)
      throw Error(where("model.patch_size"),
                  "a transformer has patch_size 1, not " + std::to_string(m.patch_size),
                  "set patch_size only with model.kind megabyte");
    if (m.local != ModelConfig{}.local)
      throw Error(where("model.local"), "a transformer has no local model",
                  "leave model.local at its default with model.kind transformer");
    check_stack(loc, "model.global", m.global, m.global.dim, "D");
  }
  check_int(where("model.ffn_multiplier"), "model.ffn_multiplier", m.ffn_multiplier, kFfnRange);
  check_real(where("model.dropout"), "model.dropout", m.dropout, kProbability);
  check_real(where("model.init_std"), "model.init_std", m.init_std, kPositive);
  check_real(where("model.layernorm_eps"), "model.layernorm_eps", m.layernorm_eps, kPositive);

  const TrainConfig& t = c.train;
  check_int(where("train.batch_size"), "train.batch_size", t.batch_size, kBatchRange);
  check_int(where("train.grad_accumulation"), "train.grad_accumulation", t.grad_accumulation,
            kBatchRange);
  check_int(where("train.steps"), "train.steps", t.steps, kStepsRange);
  const OptimizerConfig& o = t.optimizer;
  const std::tuple<const char*, double, RealRange> reals[] = {
      {"train.optimizer.lr", o.lr, kPositive},
      {"train.optimizer.beta1", o.beta1, kProbability},
      {"train.optimizer.beta2", o.beta2, kProbability},
      {"train.optimizer.eps", o.eps, kPositive},
      {"train.optimizer.weight_decay", o.weight_decay, kNonNegative},
      {"train.optimizer.grad_clip", o.grad_clip, kNonNegative},
      {"train.optimizer.decay_power", o.decay_power, kNonNegative},
  };
  for (const auto& [key, value, range] : reals) check_real(where(key), key, value, range);
  check_int(where("train.optimizer.warmup_steps"), "train.optimizer.warmup_steps", o.warmup_steps,
            kWarmupRange);
  if (o.warmup_steps > t.steps)
    throw Error(loc.blame({"train.optimizer.warmup_steps", "train.steps"}),
                "warmup_steps " + std::to_string(o.warmup_steps) + " is more than train.steps " +
                    std::to_string(t.steps),
                "the warm-up must end within the run: lower warmup_steps or raise train.steps");
  check_int(where("train.eval_every"), "train.eval_every", t.eval_every, kEveryRange);
  check_int(where("train.eval_bytes"), "train.eval_bytes", t.eval_bytes, kEveryRange);
  check_int(where("train.checkpoint_every"), "train.checkpoint_every", t.checkpoint_every,
            kEveryRange);
  check_int(where("train.keep_checkpoints"), "train.keep_checkpoints", t.keep_checkpoints,
            kKeepRange);
  check_int(where("train.log_every"), "train.log_every", t.log_every, kLogRange);
  if (m.kind == ModelKind::transformer && t.recompute == Recompute::local)
    throw Error(loc.blame({"train.recompute", "model.kind"}),
                "train.recompute is local, but a transformer has no local model",
                "use global (or all) to recompute its one stack, or none");
  check_int(where("train.local_chunk"), "train.local_chunk", t.local_chunk, kChunkRange);
  check_int(where("train.zero"), "train.zero", t.zero, kZeroRange);
  if (m.kind == ModelKind::transformer && t.local_chunk != 0)
    throw Error(loc.blame({"train.local_chunk", "model.kind"}),
                "train.local_chunk is " + std::to_string(t.local_chunk) +
                    ", but a transformer has no local model",
                "leave train.local_chunk at 0 with model.kind transformer");
}

}  // namespace

std::string_view model_kind_name(ModelKind k) {
  switch (k) {
    case ModelKind::megabyte: return "megabyte";
    case ModelKind::transformer: return "transformer";
  }
  return "?";
}

std::string_view recompute_name(Recompute r) {
  switch (r) {
    case Recompute::none: return "none";
    case Recompute::global: return "global";
    case Recompute::local: return "local";
    case Recompute::all: return "all";
  }
  return "?";
}

std::string_view activation_name(Activation a) {
  switch (a) {
    case Activation::relu: return "relu";
    case Activation::gelu: return "gelu";
  }
  return "?";
}

void validate_config(const Config& config, const std::string& name) {
  Locator loc;
  loc.where = [&name](std::string_view path) { return name + ": key '" + std::string(path) + "'"; };
  loc.overridden = loc.given = [](std::string_view) { return false; };
  check_config(config, loc);
}

Config parse_config(const std::string& yaml_text, const std::string& name,
                    const std::vector<std::string>& overrides) {
  YAML::Node root = yaml_parse(yaml_text, name);
  // An empty file (or one of comments only) is a config of defaults.
  if (!root || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap())
    throw Error(yaml_where(name, root),
                "expected sections of keys (model:, data:, train:) at the top level",
                "see megabyte-config(5) for the layout");
  KeyOrigins applied;
  for (const auto& o : overrides) apply_override(root, o, applied);

  const YamlMap top(root, YamlDocument{name, "megabyte-config(5)", &applied}, "");
  top.allow_only({"model", "data", "train"});
  Config c;
  read_model(top.optional_map("model"), c.model);
  read_data(top.optional_map("data"), c.data);
  read_train(top.optional_map("train"), c.train);
  check_config(c, tree_locator(top, applied));
  return c;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::vector<std::uint8_t> bytes;
  try {
    bytes = read_whole_file(path);
  } catch (const Error& e) {
    if (!e.hint().empty()) throw;
    throw Error(e.where(), e.message(),
                "give the path of a YAML config, such as configs/tiny-cpu.yaml");
  }
  return parse_config(std::string(bytes.begin(), bytes.end()), path, overrides);
}

std::string config_to_yaml(const Config& c) {
  const ModelConfig& m = c.model;
  const TrainConfig& t = c.train;
  const OptimizerConfig& o = t.optimizer;
  auto stack = [](const StackConfig& s) {
    return "{dim: " + std::to_string(s.dim) + ", layers: " + std::to_string(s.layers) +
           ", heads: " + std::to_string(s.heads) + "}";
  };
  std::string y;
  auto line = [&y](const std::string& text) { y += text + "\n"; };
  line("# megabyte run configuration; every key is described in megabyte-config(5).");
  if (m.kind == ModelKind::megabyte) {
    line("# The model's shape, in the paper's symbols: T = context, P = patch_size,");
    line("# D_G = global.dim (per byte: the global stack is P*D_G wide), D_L = local.dim.");
  } else {
    line("# The model's shape: T = context; global is the one stack, global.dim wide.");
  }
  line("model:");
  line("  kind: " + std::string(model_kind_name(m.kind)));
  line("  context: " + std::to_string(m.context));
  if (m.kind == ModelKind::megabyte) line("  patch_size: " + std::to_string(m.patch_size));
  line("  global: " + stack(m.global));
  if (m.kind == ModelKind::megabyte) line("  local: " + stack(m.local));
  line("  ffn_multiplier: " + std::to_string(m.ffn_multiplier));
  line("  activation: " + std::string(activation_name(m.activation)));
  line("  dropout: " + format_real(m.dropout));
  line("  init_std: " + format_real(m.init_std));
  line("  layernorm_eps: " + format_real(m.layernorm_eps));
  line("# The kind of bytes the model is trained on; it must match the dataset's.");
  line("data:");
  line("  modality: " + std::string(data::modality_name(c.data.modality)));
  line("# Training: each optimiser step sees batch_size * grad_accumulation windows of T bytes.");
  line("train:");
  line("  seed: " + std::to_string(t.seed));
  line("  batch_size: " + std::to_string(t.batch_size));
  line("  grad_accumulation: " + std::to_string(t.grad_accumulation));
  line("  steps: " + std::to_string(t.steps));
  line("  optimizer:");
  line("    lr: " + format_real(o.lr));
  line("    beta1: " + format_real(o.beta1));
  line("    beta2: " + format_real(o.beta2));
  line("    eps: " + format_real(o.eps));
  line("    weight_decay: " + format_real(o.weight_decay));
  line("    grad_clip: " + format_real(o.grad_clip));
  line("    warmup_steps: " + std::to_string(o.warmup_steps));
  line("    decay_power: " + format_real(o.decay_power));
  line("  eval_every: " + std::to_string(t.eval_every));
  line("  eval_bytes: " + std::to_string(t.eval_bytes));
  line("  checkpoint_every: " + std::to_string(t.checkpoint_every));
  line("  keep_checkpoints: " + std::to_string(t.keep_checkpoints));
  line("  log_every: " + std::to_string(t.log_every));
  line("  recompute: " + std::string(recompute_name(t.recompute)));
  if (m.kind == ModelKind::megabyte) line("  local_chunk: " + std::to_string(t.local_chunk));
  line("  zero: " + std::to_string(t.zero));
  return y;
}

}  // namespace mb::model
