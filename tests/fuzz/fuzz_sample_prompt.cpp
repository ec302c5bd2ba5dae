// Prompt files for `sample`: plan_sample with --prompt-file naming the input, for a text,
// an image and an audio checkpoint (the first input byte picks which, and the options), as
// `megabyte sample CKPT --prompt-file FILE` plans before it loads any weights. A plan that
// is made must fit the model: its prompt shorter than its length, its length within the
// context.
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include "fuzz_common.hpp"
#include "model/checkpoint.hpp"
#include "train/sample_plan.hpp"

using mb::data::Modality;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t pick = data[0];
  const auto path = mb::fuzz::write_scratch("prompt", {data + 1, size - 1});
  mb::model::CheckpointInfo info;
  info.config.model.kind = mb::model::ModelKind::megabyte;
  mb::train::SampleRequest r;
  r.prompt_file = path.string();
  r.to_file = true;
  switch (pick % 3) {
    case 0:  // text, T 256: prompts up to 255 bytes
      info.config.data.modality = Modality::text;
      info.config.model.context = 256;
      info.config.model.patch_size = 8;
      r.bytes = 1 + (pick >> 2);
      r.given.bytes = true;
      break;
    case 1:  // images of 16 x 16 in blocks of 2 x 2 (P 12), as recorded at training
      info.config.data.modality = Modality::image;
      info.config.model.context = 16 * 16 * 3;
      info.config.model.patch_size = 12;
      info.has_encoder = true;
      info.encoder.modality = Modality::image;
      info.encoder.image = {16, 12};
      if (pick & 4) {
        r.prompt_rows = 2 * ((pick >> 3) & 7);
        r.given.image_options = true;
      }
      break;
    default:  // sound at 8 kHz, a context of half a second
      info.config.data.modality = Modality::audio;
      info.config.model.context = 8000;
      info.config.model.patch_size = 8;
      info.has_encoder = true;
      info.encoder.modality = Modality::audio;
      info.encoder.audio.sample_rate = 8000;
      if (pick & 4) {
        r.prompt_seconds = 0.01 * ((pick >> 3) & 31);
        r.given.audio_options = true;
      }
      break;
  }
  info.encoder.modality = info.config.data.modality;
  mb::fuzz::expect_only_mb_errors([&] {
    std::istringstream no_stdin;
    const mb::train::SamplePlan plan =
        mb::train::plan_sample(r, info, no_stdin, [](const std::string&) {});
    if (plan.length > info.config.model.context ||
        plan.prompt.size() >= static_cast<std::size_t>(plan.length))
      std::abort();
  });
  return 0;
}
