// What `megabyte sample` generates (megabyte-sample(1)), decided from the checkpoint and the
// user's request before any weights are loaded: the prompt's bytes (text as given, the top rows
// of an image in patch-scan order, the start of a sound as PCM), the length of every sample
// with its prompt, and the layout its file is written in (the image's geometry, the sound's
// rate). A request the checkpoint cannot serve is refused here with an mb::Error naming the
// option, so that nothing is loaded or generated for it.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "data/encoders/modality.hpp"
#include "model/checkpoint.hpp"

namespace mb::train {

// What the user asked for, in the units of the command's options (whose names the errors use).
struct SampleRequest {
  std::string prompt;  // --prompt: text, as bytes
  std::string
      prompt_file;  // --prompt-file: text as it is, an image, a sound; "-" reads text from stdin
  bool to_file = false;  // -o given: images and sounds can only be written to a file
  int bytes = 512;       // text: new bytes after the prompt (capped at the context)
  // Images: 0 / -1 take the geometry recorded at training (else, for the patch, the model's).
  int image_size = 0;
  int patch_size = 0;
  int prompt_rows = -1;  // the prompt image's top rows to keep; -1: half of the image
  // Audio.
  double seconds = 2.0;          // the sound's length, prompt included (capped at the context)
  int sample_rate = 16000;       // used where given, or where training recorded none
  double prompt_seconds = -1.0;  // the prompt sound's start to keep; -1: half of `seconds`

  // Which options were given: one that does not apply to the checkpoint's modality is refused
  // rather than silently ignored, and a given rate wins over the recorded one.
  struct Given {
    bool prompt = false;
    bool bytes = false;
    bool image_options = false;  // --image-size, --patch-size or --prompt-rows
    bool audio_options = false;  // --seconds, --sample-rate or --prompt-seconds
    bool sample_rate = false;
  } given;
};

struct SamplePlan {
  data::Modality modality = data::Modality::text;
  std::vector<std::uint8_t> prompt;  // the first bytes of every sample
  int length = 0;                    // bytes of each sample, prompt included: at most the context
  data::ImageParams image;           // images: how the bytes are laid out
  data::AudioParams audio;           // audio: the rate of the PCM bytes
  int new_bytes() const { return length - static_cast<int>(prompt.size()); }
  // The layout of the bytes, as the modality's encoder writes them to a file.
  data::EncoderParams layout() const { return {modality, image, audio}; }
};

// Reads the prompt (`prompt_stdin` for a text prompt file "-") and fits it and the request to
// the model's context. A length cut short to fit is not an error: `warn` is told, in a line
// for the user. Throws mb::Error for what cannot be generated: a prompt that fills the context,
// an image larger than it, options of another modality, a prompt that cannot be decoded, ...
SamplePlan plan_sample(const SampleRequest& request, const model::CheckpointInfo& checkpoint,
                       std::istream& prompt_stdin,
                       const std::function<void(const std::string&)>& warn);

}  // namespace mb::train
