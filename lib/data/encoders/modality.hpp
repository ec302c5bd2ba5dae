// The three kinds of data a dataset can hold, and the parameters of their byte encoders.
// These parameters are written to dataset.yaml so that a model, `eval` and `sample` know
// how the bytes were laid out.
#pragma once

#include <string>
#include <string_view>

namespace mb::data {

// Each has an encoder (encoder.hpp); registry.cpp lists them.
enum class Modality { text, image, audio };

// The encoder's name ("text"), and the modality of a name (registry.cpp).
std::string_view modality_name(Modality m);
// Throws mb::Error naming `where` for an unknown name.
Modality parse_modality(std::string_view name, const std::string& where);

// Images: RGB, centre-cropped and resized to image_size x image_size, then laid out in
// patch-scan order for patches of patch_size = 3 * p * p bytes (a p x p block of pixels).
struct ImageParams {
  int image_size = 64;
  int patch_size = 12;
  // p, the side of the square pixel block of one patch; 0 if patch_size is not 3 * p^2.
  int block_side() const;
  // Throws mb::Error naming `where` unless patch_size = 3 p^2 with p dividing image_size.
  void validate(const std::string& where) const;
};

// Audio: mono, resampled to sample_rate, stored as 16-bit little-endian signed PCM
// ("pcm_s16le"), so one second is 2 * sample_rate bytes.
struct AudioParams {
  int sample_rate = 16000;
  static constexpr std::string_view encoding = "pcm_s16le";
  static constexpr int bytes_per_sample = 2;
  void validate(const std::string& where) const;
};

struct EncoderParams {
  Modality modality = Modality::text;
  ImageParams image;
  AudioParams audio;
};

}  // namespace mb::data
