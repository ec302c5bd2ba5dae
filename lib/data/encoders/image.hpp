// Images: decoded with stb_image (PNG, JPEG, BMP, GIF, TGA, PSD, HDR, PIC, PNM), converted
// to RGB, centre-cropped to a square, resized to S x S, and laid out in the paper's
// patch-scan order: the image is cut into (S/p) x (S/p) blocks of p x p pixels, blocks in
// raster order, and inside a block the pixels in raster order with their R, G, B bytes, so
// each patch of P = 3 p^2 bytes holds exactly one square block.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

#include "data/encoders/encoder.hpp"

namespace mb::data {

// The whole encoder: file -> S*S*3 bytes in patch-scan order. Throws mb::Error naming the
// path and stb_image's reason when the file cannot be read or decoded.
std::vector<std::uint8_t> encode_image_file(const std::filesystem::path& path,
                                            const ImageParams& params);

// Same, from an encoded image held in memory (`name` is used in error messages).
std::vector<std::uint8_t> encode_image_memory(std::span<const std::uint8_t> encoded,
                                              const ImageParams& params, const std::string& name);

// Raster RGB (row-major, S*S*3 bytes) -> patch-scan order, and its inverse.
std::vector<std::uint8_t> patch_scan(std::span<const std::uint8_t> raster_rgb,
                                     const ImageParams& params);
std::vector<std::uint8_t> patch_unscan(std::span<const std::uint8_t> scanned,
                                       const ImageParams& params);

// Patch-scan bytes -> a PNG file (written atomically). `bytes` must hold S*S*3 bytes.
void write_png(const std::filesystem::path& path, std::span<const std::uint8_t> scanned,
               const ImageParams& params);

// The image modality's encoder (registry.hpp): the formats above, patch-scanned; samples as PNG.
const Encoder& image_encoder();

}  // namespace mb::data
