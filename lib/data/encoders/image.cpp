#include "data/encoders/image.hpp"

#include <stb_image.h>
#include <stb_image_resize.h>
#include <stb_image_write.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/file_io.hpp"
#include "core/yaml_util.hpp"
#include "data/manifest_values.hpp"

namespace mb::data {

namespace {

constexpr int kChannels = 3;
constexpr const char* kDecodeHint =
    "is it an image stb_image can read (PNG, JPEG, BMP, GIF, TGA, PSD, HDR, PIC, PNM)?";
// The most pixels an image may have. A header can claim any size in a few bytes (a 57-byte BMP
// of 154881 x 1792 pixels: 830 MB decoded), so the size is checked before decoding: 2^27
// pixels (134 megapixels, 400 MB as RGB) is several times any photo of a camera.
constexpr std::uint64_t kMaxPixels = std::uint64_t{1} << 27;
// patch_scan and patch_unscan are given no file, so their errors name the encoder instead.
constexpr const char* kScanWhere = "image encoder";

struct StbiFree {
  void operator()(stbi_uc* pixels) const { stbi_image_free(pixels); }
};
using StbiPixels = std::unique_ptr<stbi_uc, StbiFree>;

struct DecodedImage {
  StbiPixels pixels;                // RGB, as stb_image returned them, or
  std::vector<stbi_uc> decoded_here;  // RGB, for the files decoded here instead
  int width = 0;
  int height = 0;
  const stbi_uc* rgb() const { return pixels ? pixels.get() : decoded_here.data(); }
};

std::string stb_reason() {
  // stb's reason is thread-local and only set after a failure; never hand a null to std::string.
  const char* reason = stbi_failure_reason();
  return reason ? reason : "unknown error";
}

std::size_t raster_bytes(const ImageParams& params) {
  auto side = static_cast<std::size_t>(params.image_size);
  return side * side * kChannels;
}

void check_raster_size(std::size_t got, const ImageParams& params, const char* what) {
  std::size_t want = raster_bytes(params);
  if (got == want) return;
  std::string s = std::to_string(params.image_size);
  throw Error(kScanWhere,
              std::string(what) + " holds " + std::to_string(got) + " bytes, not " +
                  std::to_string(want) + " (" + s + " x " + s + " RGB pixels)",
              "pass exactly image_size * image_size * 3 bytes for these image parameters");
}

// What a binary PNM (P5 gray, P6 RGB) header says, read by the rules of stb_image's own
// reader: whitespace and '#' comments between the fields, one character after the maximum
// value, then the pixels.
struct PnmHeader {
  int channels = 0;
  int bytes_per_sample = 1;
  std::size_t pixels_at = 0;
};

std::optional<PnmHeader> read_pnm_header(std::span<const std::uint8_t> file) {
  if (file.size() < 2 || file[0] != 'P' || (file[1] != '5' && file[1] != '6')) return {};
  PnmHeader header;
  header.channels = file[1] == '6' ? 3 : 1;
  std::size_t at = 2;
  auto is_space = [](std::uint8_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
  auto skip_space_and_comments = [&] {
    for (;;) {
      while (at < file.size() && is_space(file[at])) ++at;
      if (at >= file.size() || file[at] != '#') return;
      while (at < file.size() && file[at] != '\n' && file[at] != '\r') ++at;
    }
  };
  std::uint64_t max_value = 0;
  for (int field = 0; field < 3; ++field) {  // width, height, maximum value
    skip_space_and_comments();
    max_value = 0;
    while (at < file.size() && file[at] >= '0' && file[at] <= '9')
      max_value = std::min<std::uint64_t>(max_value * 10 + (file[at++] - '0'), UINT32_MAX);
  }
  header.bytes_per_sample = max_value > 255 ? 2 : 1;
  header.pixels_at = std::min(at + 1, file.size());
  return header;
}

// stb_image (Debian's 2022 copy) mishandles binary PNM files: it leaves the pixels a
// truncated file lacks uninitialised (the same file then gives different bytes on each run),
// and it reads a 16-bit file's samples in the machine's byte order, not the format's big-endian
// one, then converts its channels as if they were 8-bit and reads past the end of its own
// buffer. So a truncated PNM is refused here, and a 16-bit one is decoded here: the high byte
// of each sample, as stb_image reduces 16-bit PNG files.
void check_pnm_complete(std::span<const std::uint8_t> encoded, const PnmHeader& header,
                        int width, int height, const std::string& name) {
  const std::uint64_t want = static_cast<std::uint64_t>(width) * static_cast<std::uint64_t>(height) *
                             static_cast<std::uint64_t>(header.channels * header.bytes_per_sample);
  const std::uint64_t have = encoded.size() - header.pixels_at;
  if (have < want)
    throw Error(name,
                "PNM image of " + std::to_string(width) + " x " + std::to_string(height) +
                    " pixels is truncated: its header calls for " + std::to_string(want) +
                    " bytes of pixels, the file holds " + std::to_string(have),
                "the file was cut short; copy it again from its source");
}

std::vector<stbi_uc> decode_16_bit_pnm(std::span<const std::uint8_t> encoded,
                                       const PnmHeader& header, int width, int height) {
  const std::size_t count = static_cast<std::size_t>(width) * static_cast<std::size_t>(height);
  const std::uint8_t* samples = encoded.data() + header.pixels_at;
  std::vector<stbi_uc> rgb(count * kChannels);
  for (std::size_t i = 0; i < count; ++i)
    for (int c = 0; c < kChannels; ++c)
      rgb[i * kChannels + c] = samples[(i * header.channels + (header.channels == 3 ? c : 0)) * 2];
  return rgb;
}

DecodedImage decode_rgb(std::span<const std::uint8_t> encoded, const std::string& name) {
  if (encoded.size() > static_cast<std::size_t>(INT_MAX))
    throw Error(
        name,
        "encoded image of " + std::to_string(encoded.size()) + " bytes is too large to decode",
        "stb_image reads at most 2 GiB; shrink or re-encode the image");
  DecodedImage img;
  int channels_in_file = 0;
  const bool header_read = stbi_info_from_memory(encoded.data(), static_cast<int>(encoded.size()),
                                                 &img.width, &img.height, &channels_in_file);
  if (header_read &&
      static_cast<std::uint64_t>(std::max(img.width, 0)) *
              static_cast<std::uint64_t>(std::max(img.height, 0)) >
          kMaxPixels)
    throw Error(name,
                "image of " + std::to_string(img.width) + " x " + std::to_string(img.height) +
                    " pixels is over the limit of " + std::to_string(kMaxPixels) + " pixels",
                "shrink the image first (its header may also be damaged)");
  const std::optional<PnmHeader> pnm =
      header_read && img.width > 0 && img.height > 0 ? read_pnm_header(encoded) : std::nullopt;
  if (pnm) check_pnm_complete(encoded, *pnm, img.width, img.height, name);
  if (pnm && pnm->bytes_per_sample == 2) {
    img.decoded_here = decode_16_bit_pnm(encoded, *pnm, img.width, img.height);
    return img;
  }
  img.pixels.reset(stbi_load_from_memory(encoded.data(), static_cast<int>(encoded.size()),
                                         &img.width, &img.height, &channels_in_file, kChannels));
  if (!img.pixels) throw Error(name, "cannot decode image: " + stb_reason(), kDecodeHint);
  // stb_image decodes some headers of a width or height of 0 (PNM) to an empty image, which
  // has no square to crop and which stb_image_resize would abort on.
  if (img.width < 1 || img.height < 1)
    throw Error(name,
                "cannot decode image: it has no pixels (" + std::to_string(img.width) + " x " +
                    std::to_string(img.height) + ")",
                kDecodeHint);
  return img;
}

// Centre-crops to the largest square and brings it to S x S. When the square already has
// side S the pixels are copied untouched, so that no resampling filter ever alters them.
std::vector<std::uint8_t> square_raster(const DecodedImage& img, const ImageParams& params,
                                        const std::string& name) {
  const int side = std::min(img.width, img.height);
  const std::size_t row_stride = static_cast<std::size_t>(img.width) * kChannels;
  const stbi_uc* crop = img.rgb() +
                        static_cast<std::size_t>((img.height - side) / 2) * row_stride +
                        static_cast<std::size_t>((img.width - side) / 2) * kChannels;
  std::vector<std::uint8_t> raster(raster_bytes(params));
  const std::size_t out_row = static_cast<std::size_t>(params.image_size) * kChannels;
  if (side == params.image_size) {
    for (int y = 0; y < side; ++y)
      std::memcpy(raster.data() + static_cast<std::size_t>(y) * out_row,
                  crop + static_cast<std::size_t>(y) * row_stride, out_row);
    return raster;
  }
  // Photos are sRGB-encoded, so filtering in linear light avoids darkened edges.
  if (!stbir_resize_uint8_srgb(crop, side, side, static_cast<int>(row_stride), raster.data(),
                               params.image_size, params.image_size, 0, kChannels,
                               STBIR_ALPHA_CHANNEL_NONE, 0))
    throw Error(name, "cannot resize the image to " + std::to_string(params.image_size) + " pixels",
                "stb_image_resize ran out of memory; use a smaller image");
  return raster;
}

// Visits every run of p pixels that patch-scan moves as one piece: row `y` of block
// (bx, by), found at `raster_at` in the raster and at `scanned_at` in the scanned bytes.
template <typename CopyRun>
void for_each_block_row(const ImageParams& params, CopyRun copy_run) {
  const std::size_t side = static_cast<std::size_t>(params.image_size);
  const std::size_t p = static_cast<std::size_t>(params.block_side());
  const std::size_t blocks = side / p;
  const std::size_t run = p * kChannels;
  std::size_t scanned_at = 0;
  for (std::size_t by = 0; by < blocks; ++by)
    for (std::size_t bx = 0; bx < blocks; ++bx)
      for (std::size_t y = 0; y < p; ++y) {
        std::size_t raster_at = ((by * p + y) * side + bx * p) * kChannels;
        copy_run(raster_at, scanned_at, run);
        scanned_at += run;
      }
}

}  // namespace

std::vector<std::uint8_t> patch_scan(std::span<const std::uint8_t> raster_rgb,
                                     const ImageParams& params) {
  params.validate(kScanWhere);
  check_raster_size(raster_rgb.size(), params, "the raster image");
  std::vector<std::uint8_t> scanned(raster_rgb.size());
  for_each_block_row(params, [&](std::size_t raster_at, std::size_t scanned_at, std::size_t n) {
    std::memcpy(scanned.data() + scanned_at, raster_rgb.data() + raster_at, n);
  });
  return scanned;
}

std::vector<std::uint8_t> patch_unscan(std::span<const std::uint8_t> scanned,
                                       const ImageParams& params) {
  params.validate(kScanWhere);
  check_raster_size(scanned.size(), params, "the patch-scanned image");
  std::vector<std::uint8_t> raster(scanned.size());
  for_each_block_row(params, [&](std::size_t raster_at, std::size_t scanned_at, std::size_t n) {
    std::memcpy(raster.data() + raster_at, scanned.data() + scanned_at, n);
  });
  return raster;
}

std::vector<std::uint8_t> encode_image_memory(std::span<const std::uint8_t> encoded,
                                              const ImageParams& params, const std::string& name) {
  params.validate(name);
  DecodedImage img = decode_rgb(encoded, name);
  return patch_scan(square_raster(img, params, name), params);
}

std::vector<std::uint8_t> encode_image_file(const std::filesystem::path& path,
                                            const ImageParams& params) {
  params.validate(path.string());
  std::vector<std::uint8_t> encoded;
  try {
    encoded = read_whole_file(path);
  } catch (const Error& e) {
    // read_whole_file knows why the read failed but not what the user was trying to do.
    throw Error(e.where(), e.message(),
                e.hint().empty() ? "check that the image path exists and is readable" : e.hint());
  }
  return encode_image_memory(encoded, params, path.string());
}

void write_png(const std::filesystem::path& path, std::span<const std::uint8_t> scanned,
               const ImageParams& params) {
  params.validate(path.string());
  std::vector<std::uint8_t> raster = patch_unscan(scanned, params);
  // Encoding to memory first means the file is only created once the PNG is complete.
  std::vector<std::uint8_t> png;
  auto append = [](void* context, void* data, int size) {
    auto* out = static_cast<std::vector<std::uint8_t>*>(context);
    auto* bytes = static_cast<const std::uint8_t*>(data);
    out->insert(out->end(), bytes, bytes + size);
  };
  const int side = params.image_size;
  if (!stbi_write_png_to_func(append, &png, side, side, kChannels, raster.data(), side * kChannels))
    throw Error(path.string(), "cannot encode the PNG",
                "stb_image_write ran out of memory; use a smaller image size");
  AtomicFile file(path);
  file.write(png);
  file.commit();
}

namespace {

// The extensions of the formats stb_image reads.
constexpr std::string_view kExtensions[] = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga",
                                            ".psd", ".hdr", ".pic",  ".pnm", ".ppm", ".pgm"};

class ImageEncoder final : public Encoder {
 public:
  Modality modality() const override { return Modality::image; }
  std::string_view name() const override { return "image"; }

  void check_options(const EncoderParams& p) const override {
    p.image.validate("--patch-size/--image-size");
  }
  std::vector<EncoderField> fields(const EncoderParams& p) const override {
    return {{"layout", "patch-scan"},
            {"image_size", p.image.image_size},
            {"patch_size", p.image.patch_size},
            {"channels", kChannels}};
  }
  void parse_fields(const YamlMap& map, EncoderParams& p) const override {
    map.allow_only({"layout", "image_size", "patch_size", "channels"});
    require_value(map, "layout", "patch-scan");
    require_value(map, "channels", std::to_string(kChannels));
    p.image.image_size = bounded_int(map, "image_size", 65536);
    p.image.patch_size = bounded_int(map, "patch_size", 1u << 30);
    p.image.validate(map.where("patch_size"));
  }
  std::string describe(const EncoderParams& p) const override {
    const std::string side = std::to_string(p.image.image_size);
    const std::string block = std::to_string(p.image.block_side());
    return "image (" + side + "x" + side + " RGB, patch-scan order, patch size " +
           std::to_string(p.image.patch_size) + " = " + block + "x" + block + " pixels)";
  }
  std::vector<RecordedParam> recorded_params(EncoderParams& p) const override {
    return {{"data.image_size", &p.image.image_size},
            {"data.image_patch_size", &p.image.patch_size}};
  }

  std::span<const std::string_view> file_extensions() const override { return kExtensions; }
  std::vector<std::uint8_t> encode_file(const std::filesystem::path& path,
                                        const EncoderParams& p) const override {
    return encode_image_file(path, p.image);
  }
  void write_file(const std::filesystem::path& path, std::span<const std::uint8_t> bytes,
                  const EncoderParams& p) const override {
    write_png(path, bytes, p.image);
  }
  std::string_view output_extension() const override { return ".png"; }

  bool is_text() const override { return false; }
  int layout_patch_size(const EncoderParams& p) const override { return p.image.patch_size; }
  bool scores_bits_per_dim() const override { return true; }
};

}  // namespace

const Encoder& image_encoder() {
  static const ImageEncoder encoder;
  return encoder;
}

}  // namespace mb::data
