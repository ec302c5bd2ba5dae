#include "data/encoders/text.hpp"

#include "core/file_io.hpp"

namespace mb::data {

std::vector<std::uint8_t> encode_text_file(const std::filesystem::path& path) {
  return read_whole_file(path);
}

}  // namespace mb::data
