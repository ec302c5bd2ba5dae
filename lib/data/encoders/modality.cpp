#include "data/encoders/modality.hpp"

#include "core/error.hpp"

namespace mb::data {

int ImageParams::block_side() const {
  for (int p = 1; 3 * p * p <= patch_size; ++p)
    if (3 * p * p == patch_size) return p;
  return 0;
}

void ImageParams::validate(const std::string& where) const {
  if (image_size < 1 || image_size > 65536)
    throw Error(where, "image size " + std::to_string(image_size) + " is out of range",
                "use a side length between 1 and 65536 pixels");
  int p = block_side();
  if (p == 0)
    throw Error(where, "patch size " + std::to_string(patch_size) + " is not 3*p*p",
                "an image patch is a p x p block of RGB pixels: use 3, 12, 27, 48, 75, 192, ...");
  if (image_size % p != 0)
    throw Error(where,
                "image size " + std::to_string(image_size) +
                    " is not a multiple of the patch block side " + std::to_string(p),
                "choose an image size divisible by " + std::to_string(p));
}

void AudioParams::validate(const std::string& where) const {
  if (sample_rate < 1000 || sample_rate > 384000)
    throw Error(where, "sample rate " + std::to_string(sample_rate) + " Hz is out of range",
                "use a rate between 1000 and 384000 Hz");
}

}  // namespace mb::data
