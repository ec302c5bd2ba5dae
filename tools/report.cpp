#include "report.hpp"

#include <cstdio>
#include <variant>

#include "core/progress.hpp"
#include "data/encoders/registry.hpp"

namespace mb::tools {

namespace {
double ratio(std::uint64_t bytes, std::uint64_t compressed) {
  return compressed == 0 ? 0.0 : static_cast<double>(bytes) / static_cast<double>(compressed);
}
}  // namespace

nlohmann::json dataset_json(const std::filesystem::path& dir, const data::Manifest& m) {
  nlohmann::json j;
  j["dataset"] = dir.string();
  j["format_version"] = m.version;
  j["modality"] = std::string(data::modality_name(m.encoder.modality));
  nlohmann::json enc = nlohmann::json::object();
  for (const data::EncoderField& f : data::encoder_for(m.encoder.modality).fields(m.encoder))
    std::visit([&](const auto& value) { enc[f.key] = value; }, f.value);
  j["encoder"] = enc;
  j["splits"] = nlohmann::json::object();
  for (const auto& s : m.splits) {
    nlohmann::json js;
    js["documents"] = s.documents;
    js["bytes"] = s.bytes;
    js["shards"] = s.shards.size();
    js["compressed_bytes"] = s.compressed_bytes();
    js["ratio"] = ratio(s.bytes, s.compressed_bytes());
    j["splits"][s.name] = js;
  }
  return j;
}

std::string dataset_table(const std::filesystem::path& dir, const data::Manifest& m) {
  std::string out = "dataset   " + dir.string() + "\n";
  out += "modality  " + data::encoder_for(m.encoder.modality).describe(m.encoder) + "\n\n";
  char line[256];
  std::snprintf(line, sizeof line, "%-12s %10s %12s %7s %12s %7s\n", "split", "documents", "bytes",
                "shards", "compressed", "ratio");
  out += line;
  for (const auto& s : m.splits) {
    std::snprintf(line, sizeof line, "%-12s %10llu %12s %7zu %12s %7.2f\n", s.name.c_str(),
                  static_cast<unsigned long long>(s.documents),
                  human_bytes(static_cast<double>(s.bytes)).c_str(), s.shards.size(),
                  human_bytes(static_cast<double>(s.compressed_bytes())).c_str(),
                  ratio(s.bytes, s.compressed_bytes()));
    out += line;
  }
  return out;
}

}  // namespace mb::tools
