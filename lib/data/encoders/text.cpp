#include "data/encoders/text.hpp"

#include <string_view>

#include "core/atomic_file.hpp"
#include "core/file_io.hpp"
#include "core/yaml_util.hpp"
#include "data/manifest_values.hpp"

namespace mb::data {

namespace {

class TextEncoder final : public Encoder {
 public:
  Modality modality() const override { return Modality::text; }
  std::string_view name() const override { return "text"; }

  void check_options(const EncoderParams&) const override {}
  std::vector<EncoderField> fields(const EncoderParams&) const override {
    return {{"layout", "bytes"}};
  }
  void parse_fields(const YamlMap& map, EncoderParams&) const override {
    map.allow_only({"layout"});
    require_value(map, "layout", "bytes");
  }
  std::string describe(const EncoderParams&) const override {
    return "text (the files' bytes as they are)";
  }
  std::vector<RecordedParam> recorded_params(EncoderParams&) const override { return {}; }

  std::span<const std::string_view> file_extensions() const override { return {}; }
  std::vector<std::uint8_t> encode_file(const std::filesystem::path& path,
                                        const EncoderParams&) const override {
    return encode_text_file(path);
  }
  void write_file(const std::filesystem::path& path, std::span<const std::uint8_t> bytes,
                  const EncoderParams&) const override {
    const auto* chars = reinterpret_cast<const char*>(bytes.data());
    write_file_atomic(path, std::string_view(chars, bytes.size()));
  }
  std::string_view output_extension() const override { return ".txt"; }

  bool is_text() const override { return true; }
  int layout_patch_size(const EncoderParams&) const override { return 0; }
  bool scores_bits_per_dim() const override { return false; }
};

}  // namespace

std::vector<std::uint8_t> encode_text_file(const std::filesystem::path& path) {
  return read_whole_file(path);
}

const Encoder& text_encoder() {
  static const TextEncoder encoder;
  return encoder;
}

}  // namespace mb::data
