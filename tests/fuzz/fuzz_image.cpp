// The image decode path: encode_image_memory (stb_image's decoders, RGB conversion, the
// centre crop, the resize to S x S, the patch scan), then patch_unscan and patch_scan, which
// must invert each other. The first input byte picks the geometry (S, p), the rest is the
// encoded image.
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "data/encoders/image.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  // S in {8, 16, 32, 64}, p in {1, 2, 4} (a patch of 3 p^2 bytes); (64, 4) is a real dataset.
  static constexpr int kSides[] = {8, 16, 32, 64};
  static constexpr int kBlocks[] = {1, 2, 4, 4};
  mb::data::ImageParams params;
  params.image_size = kSides[data[0] & 3];
  const int p = kBlocks[(data[0] >> 2) & 3];
  params.patch_size = 3 * p * p;
  mb::fuzz::expect_only_mb_errors([&] {
    const std::vector<std::uint8_t> scanned =
        mb::data::encode_image_memory({data + 1, size - 1}, params, "image");
    if (scanned.size() != static_cast<std::size_t>(params.image_size * params.image_size * 3))
      std::abort();
    if (mb::data::patch_scan(mb::data::patch_unscan(scanned, params), params) != scanned)
      std::abort();
  });
  return 0;
}
