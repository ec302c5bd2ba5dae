#include "data/manifest.hpp"

#include <yaml-cpp/yaml.h>

#include <system_error>
#include <variant>

#include "core/error.hpp"
#include "core/file_io.hpp"
#include "core/hash.hpp"
#include "core/yaml_util.hpp"
#include "data/encoders/registry.hpp"
#include "data/manifest_values.hpp"

namespace mb::data {

namespace fs = std::filesystem;

std::uint64_t SplitInfo::compressed_bytes() const {
  std::uint64_t n = 0;
  for (const auto& s : shards) n += s.compressed_bytes;
  return n;
}

const SplitInfo* Manifest::find_split(const std::string& name) const {
  for (const auto& s : splits)
    if (s.name == name) return &s;
  return nullptr;
}

std::uint64_t Manifest::fingerprint() const {
  std::string text;
  for (const SplitInfo& split : splits) {
    text += split.name;
    text += '\n';
    for (const ShardInfo& shard : split.shards) text += to_hex64(shard.checksum) + '\n';
  }
  return xxh64(text);
}

std::string Manifest::to_yaml() const {
  YAML::Emitter out;
  out << YAML::Comment("megabyte dataset manifest; see megabyte-dataset(5)");
  out << YAML::BeginMap;
  out << YAML::Key << "format" << YAML::Value << "megabyte-dataset";
  out << YAML::Key << "version" << YAML::Value << version;
  out << YAML::Key << "modality" << YAML::Value << std::string(modality_name(encoder.modality));
  out << YAML::Key << "encoder" << YAML::Value << YAML::BeginMap;
  for (const EncoderField& f : encoder_for(encoder.modality).fields(encoder))
    std::visit([&](const auto& v) { out << YAML::Key << f.key << YAML::Value << v; }, f.value);
  out << YAML::EndMap;
  out << YAML::Key << "splits" << YAML::Value << YAML::BeginMap;
  for (const auto& s : splits) {
    out << YAML::Key << s.name << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "documents" << YAML::Value << s.documents;
    out << YAML::Key << "bytes" << YAML::Value << s.bytes;
    out << YAML::Key << "shards" << YAML::Value << YAML::BeginSeq;
    for (const auto& sh : s.shards) {
      out << YAML::BeginMap;
      out << YAML::Key << "file" << YAML::Value << sh.file;
      out << YAML::Key << "documents" << YAML::Value << sh.documents;
      out << YAML::Key << "bytes" << YAML::Value << sh.bytes;
      out << YAML::Key << "compressed_bytes" << YAML::Value << sh.compressed_bytes;
      // Quoted: an all-digit hex string would otherwise read back as a number in other YAML readers.
      out << YAML::Key << "xxh64" << YAML::Value << YAML::DoubleQuoted << to_hex64(sh.checksum);
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

namespace {

EncoderParams parse_encoder(const YamlMap& root) {
  const Encoder& encoder = encoder_named(root.string("modality"), root.where("modality"));
  EncoderParams p;
  p.modality = encoder.modality();
  encoder.parse_fields(root.map("encoder"), p);
  return p;
}

ShardInfo parse_shard(const YamlMap& m) {
  m.allow_only({"file", "documents", "bytes", "compressed_bytes", "xxh64"});
  ShardInfo s;
  s.file = m.string("file");
  // A shard name is a plain file name inside the dataset directory, never a path out of it.
  if (s.file.empty() || s.file.find('/') != std::string::npos || s.file == "." || s.file == "..")
    throw Error(m.where("file"), "shard file '" + s.file + "' must be a plain file name");
  s.documents = m.u64("documents");
  s.bytes = m.u64("bytes");
  s.compressed_bytes = m.u64("compressed_bytes");
  s.checksum = parse_hex64(m.string("xxh64"), m.where("xxh64"));
  return s;
}

SplitInfo parse_split(const YamlMap& m, const std::string& name) {
  m.allow_only({"documents", "bytes", "shards"});
  SplitInfo s;
  s.name = name;
  s.documents = m.u64("documents");
  s.bytes = m.u64("bytes");
  YAML::Node shards = m.node("shards");
  if (!shards.IsSequence()) throw Error(m.where("shards"), "expected a list of shards");
  std::uint64_t docs = 0, bytes = 0;
  for (std::size_t i = 0; i < shards.size(); ++i) {
    s.shards.push_back(parse_shard(
        YamlMap(shards[i], m.file(), m.path_of("shards") + "[" + std::to_string(i) + "]")));
    // Summed with overflow checks: wrapped totals could match a split's and hide the damage.
    if (__builtin_add_overflow(docs, s.shards.back().documents, &docs) ||
        __builtin_add_overflow(bytes, s.shards.back().bytes, &bytes))
      throw Error(m.where("shards"), "the shards' sizes add up to more than 2^64",
                  "the manifest was edited or damaged; re-create the dataset");
  }
  if (docs != s.documents || bytes != s.bytes)
    throw Error(m.where("documents"), "split totals do not match the sum of its shards",
                "the manifest was edited or damaged; re-create the dataset");
  return s;
}

}  // namespace

Manifest Manifest::parse(const std::string& text, const std::string& file) {
  YAML::Node doc = yaml_parse(text, file);
  if (!doc || doc.IsNull())
    throw Error(file, "empty manifest", "re-create the dataset with `megabyte prepare`");
  YamlMap root(doc, file, "");
  root.allow_only({"format", "version", "modality", "encoder", "splits"});
  require_value(root, "format", "megabyte-dataset");
  Manifest m;
  std::uint64_t version = root.u64("version");
  if (version != static_cast<std::uint64_t>(kManifestVersion))
    throw Error(root.where("version"),
                "dataset format version " + std::to_string(version) + " is not supported",
                "this megabyte reads version " + std::to_string(kManifestVersion));
  m.encoder = parse_encoder(root);
  YamlMap splits = root.map("splits");
  splits.allow_only({"train", "validation"});
  for (const char* name : {"train", "validation"})
    if (splits.has(name)) m.splits.push_back(parse_split(splits.map(name), name));
  return m;
}

Manifest Manifest::load(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw Error(dir.string(), fs::exists(dir, ec) ? "not a directory" : "no such dataset directory",
                "give the directory that `megabyte prepare` wrote");
  const fs::path file = dir / kManifestName;
  if (!fs::exists(file, ec))
    throw Error(dir.string(), "not a megabyte dataset (no dataset.yaml)",
                "create one with `megabyte prepare`; an interrupted prepare leaves no directory");
  auto bytes = read_whole_file(file);
  return parse(std::string(bytes.begin(), bytes.end()), file.string());
}

}  // namespace mb::data
