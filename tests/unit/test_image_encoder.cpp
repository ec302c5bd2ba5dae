#include <doctest/doctest.h>
#include <stb_image.h>
#include <stb_image_write.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/file_io.hpp"
#include "data/encoders/image.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using mb::data::ImageParams;

namespace {

using mb::test::TempDir;

std::vector<std::uint8_t> random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<std::uint8_t> v(n);
  for (auto& b : v) b = static_cast<std::uint8_t>(byte(rng));
  return v;
}

// A raster whose pixels say where they are: R = x, G = y, B = a fixed marker.
constexpr std::uint8_t kBlueMarker = 177;
std::vector<std::uint8_t> coordinate_raster(int width, int height) {
  std::vector<std::uint8_t> r;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      r.push_back(static_cast<std::uint8_t>(x));
      r.push_back(static_cast<std::uint8_t>(y));
      r.push_back(kBlueMarker);
    }
  return r;
}

std::vector<std::uint8_t> png_in_memory(const std::vector<std::uint8_t>& rgb, int width,
                                        int height) {
  std::vector<std::uint8_t> png;
  auto append = [](void* context, void* data, int size) {
    auto* out = static_cast<std::vector<std::uint8_t>*>(context);
    out->insert(out->end(), static_cast<std::uint8_t*>(data),
                static_cast<std::uint8_t*>(data) + size);
  };
  REQUIRE(stbi_write_png_to_func(append, &png, width, height, 3, rgb.data(), width * 3));
  return png;
}

std::vector<std::uint8_t> crop(const std::vector<std::uint8_t>& rgb, int width, int x0, int y0,
                               int side) {
  std::vector<std::uint8_t> out;
  for (int y = y0; y < y0 + side; ++y) {
    auto row = rgb.begin() + (static_cast<std::ptrdiff_t>(y) * width + x0) * 3;
    out.insert(out.end(), row, row + side * 3);
  }
  return out;
}

void write_bytes(const fs::path& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
}

void check_error_names(const fs::path& path, const ImageParams& params) {
  try {
    mb::data::encode_image_file(path, params);
    FAIL("no error for " << path);
  } catch (const mb::Error& e) {
    CHECK(std::string(e.what()).find(path.string()) != std::string::npos);
    CHECK(e.where() == path.string());
    CHECK_FALSE(e.hint().empty());
  }
}

struct StbiFree {
  void operator()(stbi_uc* p) const { stbi_image_free(p); }
};

}  // namespace

TEST_CASE("patch_scan: patch_unscan inverts it both ways for random images") {
  const std::vector<ImageParams> combos = {{1, 3},   {4, 12},  {8, 12},  {12, 27},
                                           {16, 48}, {30, 75}, {64, 12}, {64, 192}};
  unsigned seed = 1;
  for (const ImageParams& params : combos) {
    CAPTURE(params.image_size);
    CAPTURE(params.patch_size);
    std::size_t n = static_cast<std::size_t>(params.image_size) * params.image_size * 3;
    auto raster = random_bytes(n, seed++);
    auto scanned = mb::data::patch_scan(raster, params);
    CHECK(scanned.size() == n);
    CHECK(mb::data::patch_unscan(scanned, params) == raster);
    auto y = random_bytes(n, seed++);
    CHECK(mb::data::patch_scan(mb::data::patch_unscan(y, params), params) == y);
  }
}

TEST_CASE("patch_scan: each patch is exactly one p x p block, blocks in raster order") {
  for (int patch_size : {3, 12, 48, 192}) {
    ImageParams params{48, patch_size};
    const int p = params.block_side();
    const int blocks = params.image_size / p;
    CAPTURE(patch_size);
    auto scanned = mb::data::patch_scan(coordinate_raster(48, 48), params);
    const std::size_t P = static_cast<std::size_t>(patch_size);
    REQUIRE(scanned.size() == P * static_cast<std::size_t>(blocks * blocks));
    bool all_ok = true;
    for (std::size_t k = 0; k < scanned.size() / P; ++k) {
      const int bx = static_cast<int>(k) % blocks, by = static_cast<int>(k) / blocks;
      for (int j = 0; j < p * p; ++j) {
        const std::uint8_t* px = scanned.data() + k * P + static_cast<std::size_t>(j) * 3;
        // Inside the block, pixels run in raster order.
        bool ok = px[0] / p == bx && px[1] / p == by && px[0] % p == j % p && px[1] % p == j / p &&
                  px[2] == kBlueMarker;
        if (!ok) {
          all_ok = false;
          MESSAGE("patch " << k << " pixel " << j << " holds (" << int(px[0]) << ", " << int(px[1])
                           << ")");
        }
      }
    }
    CHECK(all_ok);
  }
}

TEST_CASE(
    "encode_image_memory: a non-square PNG gives its exact centre crop when no resize is needed") {
  ImageParams params{24, 12};
  SUBCASE("wide 40x24 image: crop starts at x = 8") {
    auto rgb = coordinate_raster(40, 24);
    auto got = mb::data::encode_image_memory(png_in_memory(rgb, 40, 24), params, "wide.png");
    CHECK(got == mb::data::patch_scan(crop(rgb, 40, 8, 0, 24), params));
  }
  SUBCASE("tall 24x41 image: crop starts at y = 8") {
    auto rgb = random_bytes(24 * 41 * 3, 7);
    auto got = mb::data::encode_image_memory(png_in_memory(rgb, 24, 41), params, "tall.png");
    CHECK(got == mb::data::patch_scan(crop(rgb, 24, 0, 8, 24), params));
  }
}

TEST_CASE("encode_image_memory: a resized image keeps its size and a flat colour") {
  std::vector<std::uint8_t> rgb;
  for (int i = 0; i < 40 * 24; ++i) rgb.insert(rgb.end(), {200, 30, 90});
  ImageParams params{12, 27};
  auto got = mb::data::encode_image_memory(png_in_memory(rgb, 40, 24), params, "flat.png");
  REQUIRE(got.size() == 12u * 12u * 3u);
  int worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    worst = std::max(worst, std::abs(int(got[i]) - int(rgb[i % 3])));
  CHECK(worst <= 1);
}

TEST_CASE("encode_image_file: a real photo decodes to S*S*3 bytes") {
  const fs::path dir = "/usr/share/backgrounds/mate/nature";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    MESSAGE("skipped: " << dir << " is absent");
    return;
  }
  fs::path photo;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().extension() == ".jpg" && (photo.empty() || entry.path() < photo))
      photo = entry.path();
  if (photo.empty()) {
    MESSAGE("skipped: no .jpg in " << dir);
    return;
  }
  ImageParams params{64, 12};
  auto bytes = mb::data::encode_image_file(photo, params);
  CHECK(bytes.size() == 64u * 64u * 3u);
}

TEST_CASE("encode_image_file: unreadable input is an mb::Error naming the path") {
  TempDir dir("image-bad");
  ImageParams params{16, 12};
  fs::path noise = dir.path / "noise.png";
  write_bytes(noise, random_bytes(5000, 3));
  check_error_names(noise, params);

  fs::path text = dir.path / "notes.png";
  std::ofstream(text) << "this is a text file, not a picture\n";
  check_error_names(text, params);

  check_error_names(dir.path / "missing.png", params);
}

TEST_CASE("image params: a patch that is not 3p^2 or does not tile the image is refused") {
  auto png = png_in_memory(coordinate_raster(8, 8), 8, 8);
  CHECK_THROWS_AS(mb::data::encode_image_memory(png, ImageParams{16, 10}, "x.png"), mb::Error);
  CHECK_THROWS_AS(mb::data::encode_image_memory(png, ImageParams{30, 48}, "x.png"), mb::Error);
  std::vector<std::uint8_t> raster(30 * 30 * 3);
  CHECK_THROWS_AS(mb::data::patch_scan(raster, ImageParams{30, 48}), mb::Error);
  CHECK_THROWS_AS(mb::data::patch_unscan(raster, ImageParams{30, 10}), mb::Error);
}

TEST_CASE("patch_scan: input of the wrong size is an mb::Error") {
  ImageParams params{8, 12};
  std::vector<std::uint8_t> short_input(8 * 8 * 3 - 1), long_input(8 * 8 * 3 + 3);
  CHECK_THROWS_AS(mb::data::patch_scan(short_input, params), mb::Error);
  CHECK_THROWS_AS(mb::data::patch_unscan(long_input, params), mb::Error);
}

TEST_CASE("write_png: stb_image reads back the unscanned raster") {
  TempDir dir("image-png");
  ImageParams params{32, 48};
  auto scanned = random_bytes(32 * 32 * 3, 11);
  fs::path out = dir.path / "out.png";
  mb::data::write_png(out, scanned, params);
  int w = 0, h = 0, c = 0;
  std::unique_ptr<stbi_uc, StbiFree> pixels(stbi_load(out.c_str(), &w, &h, &c, 3));
  REQUIRE(pixels);
  CHECK(w == 32);
  CHECK(h == 32);
  auto raster = mb::data::patch_unscan(scanned, params);
  CHECK(std::vector<std::uint8_t>(pixels.get(), pixels.get() + raster.size()) == raster);
  CHECK(mb::data::encode_image_file(out, params) == scanned);
  // Only the finished file is left: no temporary beside it.
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator{}) == 1);

  CHECK_THROWS_AS(
      mb::data::write_png(dir.path / "short.png", std::vector<std::uint8_t>(10), params),
      mb::Error);
  CHECK_FALSE(fs::exists(dir.path / "short.png"));
}
