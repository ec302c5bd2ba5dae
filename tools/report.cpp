#include "report.hpp"

#include <cstdio>

#include "core/progress.hpp"

namespace mb::tools {

namespace {
std::string encoder_text(const data::EncoderParams& e) {
  switch (e.modality) {
    case data::Modality::text: return "text (the files' bytes as they are)";
    case data::Modality::image:
      return "image (" + std::to_string(e.image.image_size) + "x" + std::to_string(e.image.image_size) +
             " RGB, patch-scan order, patch size " + std::to_string(e.image.patch_size) + " = " +
             std::to_string(e.image.block_side()) + "x" + std::to_string(e.image.block_side()) + " pixels)";
    case data::Modality::audio:
      return "audio (mono, " + std::to_string(e.audio.sample_rate) + " Hz, " + std::string(data::AudioParams::encoding) +
             ", " + std::to_string(2 * e.audio.sample_rate) + " bytes/s)";
  }
  return "?";
}

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
  if (m.encoder.modality == data::Modality::text) {
    enc["layout"] = "bytes";
  } else if (m.encoder.modality == data::Modality::image) {
    enc["image_size"] = m.encoder.image.image_size;
    enc["patch_size"] = m.encoder.image.patch_size;
    enc["channels"] = 3;
    enc["layout"] = "patch-scan";
  } else if (m.encoder.modality == data::Modality::audio) {
    enc["layout"] = "pcm";
    enc["sample_rate"] = m.encoder.audio.sample_rate;
    enc["encoding"] = std::string(data::AudioParams::encoding);
    enc["channels"] = 1;
  }
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
  out += "modality  " + encoder_text(m.encoder) + "\n\n";
  char line[256];
  std::snprintf(line, sizeof line, "%-12s %10s %12s %7s %12s %7s\n", "split", "documents", "bytes", "shards",
                "compressed", "ratio");
  out += line;
  for (const auto& s : m.splits) {
    std::snprintf(line, sizeof line, "%-12s %10llu %12s %7zu %12s %7.2f\n", s.name.c_str(),
                  static_cast<unsigned long long>(s.documents), human_bytes(static_cast<double>(s.bytes)).c_str(),
                  s.shards.size(), human_bytes(static_cast<double>(s.compressed_bytes())).c_str(),
                  ratio(s.bytes, s.compressed_bytes()));
    out += line;
  }
  return out;
}

}  // namespace mb::tools
