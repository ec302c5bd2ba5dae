// Text: a file's bytes exactly as they are (any encoding, any byte value, NUL included).
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "data/encoders/encoder.hpp"

namespace mb::data {

// Throws mb::Error naming the path when the file cannot be read.
std::vector<std::uint8_t> encode_text_file(const std::filesystem::path& path);

// The text modality's encoder (registry.hpp): every file, as it is.
const Encoder& text_encoder();

}  // namespace mb::data
