// The audio decode path: encode_audio_memory (libsndfile's readers for every format it
// knows, the mix to mono, libsamplerate to the dataset rate, s16le PCM). The first input
// byte picks the dataset rate, the rest is the encoded file.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "data/encoders/audio.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  static constexpr int kRates[] = {8000, 16000, 22050, 48000};
  mb::data::AudioParams params;
  params.sample_rate = kRates[data[0] & 3];
  mb::fuzz::expect_only_mb_errors([&] {
    const std::vector<std::uint8_t> pcm =
        mb::data::encode_audio_memory({data + 1, size - 1}, params, "audio");
    if (pcm.size() % 2 != 0) std::abort();
  });
  return 0;
}
