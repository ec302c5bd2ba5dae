// Writes small images in the formats stb_image_write makes (PNG, JPEG, BMP, TGA, HDR), of a
// few sizes and shapes, as seeds for fuzz_image and fuzz_sample_prompt (make-corpus.sh).
// Usage: fuzz_seed_images DIR
#include <stb_image_write.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  struct Shape {
    int w, h, channels;
  };
  int failed = 0;
  for (const Shape s : {Shape{16, 16, 3}, Shape{24, 13, 4}, Shape{9, 31, 1}, Shape{40, 40, 2}}) {
    std::vector<unsigned char> px(static_cast<std::size_t>(s.w) * s.h * s.channels);
    std::vector<float> hdr(px.size());
    for (std::size_t i = 0; i < px.size(); ++i) {
      px[i] = static_cast<unsigned char>((i * 37 + (i / s.channels) % s.w * 11) & 0xFF);
      hdr[i] = static_cast<float>(px[i]) / 64.0f;
    }
    const std::string base = dir + "/" + std::to_string(s.w) + "x" + std::to_string(s.h) + "c" +
                             std::to_string(s.channels);
    failed += !stbi_write_png((base + ".png").c_str(), s.w, s.h, s.channels, px.data(), 0);
    failed += !stbi_write_jpg((base + ".jpg").c_str(), s.w, s.h, s.channels, px.data(), 80);
    failed += !stbi_write_bmp((base + ".bmp").c_str(), s.w, s.h, s.channels, px.data());
    failed += !stbi_write_tga((base + ".tga").c_str(), s.w, s.h, s.channels, px.data());
    failed += !stbi_write_hdr((base + ".hdr").c_str(), s.w, s.h, s.channels, hdr.data());
  }
  return failed == 0 ? 0 : 1;
}
