#include "train/sample_plan.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <istream>
#include <iterator>

#include "core/error.hpp"
#include "core/file_io.hpp"
#include "core/progress.hpp"
#include "data/encoders/audio.hpp"
#include "data/encoders/image.hpp"
#include "data/encoders/registry.hpp"

namespace mb::train {

namespace {

using data::Modality;
using Warn = std::function<void(const std::string&)>;

// "0.1", "2", "0.032": seconds as a person writes them.
std::string decimal(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

std::vector<std::uint8_t> read_text_prompt(const SampleRequest& r, std::istream& prompt_stdin) {
  if (r.prompt_file.empty()) return {r.prompt.begin(), r.prompt.end()};
  if (r.prompt_file != "-") return read_whole_file(r.prompt_file);
  return {std::istreambuf_iterator<char>(prompt_stdin), std::istreambuf_iterator<char>()};
}

// The prompt as it is, then --bytes more, capped at the context.
SamplePlan plan_text(const SampleRequest& r, int T, std::istream& prompt_stdin, const Warn& warn) {
  SamplePlan p;
  p.prompt = read_text_prompt(r, prompt_stdin);
  const std::string where = r.prompt_file.empty()  ? "--prompt"
                            : r.prompt_file == "-" ? "stdin"
                                                   : r.prompt_file;
  if (static_cast<std::int64_t>(p.prompt.size()) >= T)
    throw Error(
        where,
        "the prompt is " +
            human_count(static_cast<std::int64_t>(p.prompt.size()), "byte", "bytes") +
            " but the model's context is " + std::to_string(T) +
            " bytes, prompt and sample together",
        "give a prompt of at most " + std::to_string(T - 1) + " bytes, e.g. the end of this one");
  const int room = T - static_cast<int>(p.prompt.size());
  int n = r.bytes;
  if (n > room) {
    warn("--bytes " + std::to_string(n) + " capped at " + std::to_string(room) +
         ": the model's context is " + std::to_string(T) + " bytes" +
         (p.prompt.empty() ? "" : ", the prompt included"));
    n = room;
  }
  p.length = static_cast<int>(p.prompt.size()) + n;
  return p;
}

// A whole image of S x S pixels; the prompt is the top rows of a picture, which in patch-scan
// order are the first rows of blocks.
SamplePlan plan_image(const SampleRequest& r, const model::ModelConfig& m) {
  SamplePlan p;
  p.modality = Modality::image;
  if (r.image_size == 0)
    throw Error(
        "--image-size", "is needed to sample an image model",
        "give the image size of the dataset it was trained on: image_size in its dataset.yaml");
  if (r.given.prompt)
    throw Error("--prompt", "is text; an image model takes an image prompt",
                "give a picture with --prompt-file (its top --prompt-rows rows are kept)");
  // The dataset's scan order is not in the checkpoint: a MEGABYTE model was trained with
  // patches of its own size (train checks it), a transformer needs to be told.
  p.image.image_size = r.image_size;
  p.image.patch_size = r.patch_size > 0                       ? r.patch_size
                       : m.kind == model::ModelKind::megabyte ? m.patch_size
                                                              : 0;
  if (p.image.patch_size == 0)
    throw Error(
        "--patch-size", "is needed to sample an image with a byte transformer",
        "give the patch size of the dataset it was trained on: patch_size in its dataset.yaml");
  p.image.validate(r.patch_size > 0 ? "--patch-size" : "--image-size");
  const std::int64_t total = std::int64_t{r.image_size} * r.image_size * 3;
  if (total > m.context)
    throw Error(
        "--image-size",
        "an image of " + std::to_string(r.image_size) + "x" + std::to_string(r.image_size) +
            " is " + std::to_string(total) + " bytes, more than the model's context of " +
            std::to_string(m.context),
        "the model generates whole images of at most " + std::to_string(m.context) + " bytes");
  p.length = static_cast<int>(total);
  const int side = p.image.block_side(), S = r.image_size;
  if (r.prompt_file.empty()) {
    if (r.prompt_rows >= 0)
      throw Error("--prompt-rows", "needs an image prompt", "give one with --prompt-file");
    return p;
  }
  const int rows = r.prompt_rows >= 0 ? r.prompt_rows : S / 2 / side * side;
  if (rows % side != 0 || rows >= S)
    throw Error(
        "--prompt-rows",
        std::to_string(rows) + " rows cannot be kept of a " + std::to_string(S) +
            "-pixel image scanned in blocks of " + std::to_string(side),
        "keep a multiple of " + std::to_string(side) + " rows, less than " + std::to_string(S));
  std::vector<std::uint8_t> scanned = data::encode_image_file(r.prompt_file, p.image);
  const std::size_t keep = static_cast<std::size_t>(rows / side) * (S / side) * p.image.patch_size;
  scanned.resize(keep);
  p.prompt = std::move(scanned);
  return p;
}

// --seconds of sound at the rate, capped at the context; the prompt is the start of a sound.
SamplePlan plan_audio(const SampleRequest& r, const model::ModelConfig& m, const Warn& warn) {
  SamplePlan p;
  p.modality = Modality::audio;
  if (r.given.prompt)
    throw Error("--prompt", "is text; an audio model takes a sound prompt",
                "give a sound file with --prompt-file");
  p.audio.sample_rate = r.sample_rate;
  p.audio.validate("--sample-rate");
  const int bps = data::AudioParams::bytes_per_sample;
  const std::int64_t want = std::llround(r.seconds * r.sample_rate) * bps;
  const int cap = m.context / bps * bps;
  p.length = static_cast<int>(std::min<std::int64_t>(want, cap));
  if (want > cap)
    warn("--seconds " + decimal(r.seconds) + " capped at " +
         decimal(static_cast<double>(cap) / bps / r.sample_rate) + " s: the model's context is " +
         std::to_string(m.context) + " bytes, " + std::to_string(m.context / bps) + " samples");
  if (p.length < bps) throw Error("--seconds", "is shorter than one sample", "ask for more");
  if (r.prompt_file.empty()) {
    if (r.prompt_seconds >= 0)
      throw Error("--prompt-seconds", "needs a sound prompt", "give one with --prompt-file");
    return p;
  }
  std::vector<std::uint8_t> pcm = data::encode_audio_file(r.prompt_file, p.audio);
  const double secs = r.prompt_seconds >= 0
                          ? r.prompt_seconds
                          : static_cast<double>(p.length) / bps / r.sample_rate / 2;
  const std::size_t keep =
      std::min<std::size_t>(pcm.size() / bps * bps, std::llround(secs * r.sample_rate) * bps);
  if (static_cast<std::int64_t>(keep) >= p.length)
    throw Error("--prompt-seconds",
                "the prompt (" + std::to_string(keep / bps) +
                    " samples) fills the whole sound of " + std::to_string(p.length / bps) +
                    " samples",
                "keep less of the prompt or ask for more --seconds");
  pcm.resize(keep);
  p.prompt = std::move(pcm);
  return p;
}

}  // namespace

SamplePlan plan_sample(const SampleRequest& request, const model::CheckpointInfo& checkpoint,
                       std::istream& prompt_stdin, const Warn& warn) {
  const Modality modality = checkpoint.config.data.modality;
  // The dataset's layout, as training recorded it, is the default of the layout options.
  SampleRequest r = request;
  if (checkpoint.has_encoder && modality == Modality::image) {
    if (r.image_size == 0) r.image_size = checkpoint.encoder.image.image_size;
    if (r.patch_size == 0) r.patch_size = checkpoint.encoder.image.patch_size;
  }
  if (checkpoint.has_encoder && modality == Modality::audio && !r.given.sample_rate)
    r.sample_rate = checkpoint.encoder.audio.sample_rate;

  const data::Encoder& encoder = data::encoder_for(modality);
  const std::string a_kind = encoder.name_with_article();
  if (modality != Modality::image && r.given.image_options)
    throw Error("--image-size, --patch-size, --prompt-rows",
                "are for image models; this checkpoint is " + a_kind + " model", "leave them out");
  if (modality != Modality::audio && r.given.audio_options)
    throw Error("--seconds, --sample-rate, --prompt-seconds",
                "are for audio models; this checkpoint is " + a_kind + " model", "leave them out");
  if (!encoder.is_text() && r.given.bytes)
    throw Error("--bytes", "is for text models; this checkpoint is " + a_kind + " model",
                modality == Modality::image ? "an image model makes whole images of --image-size"
                                            : "give the length of the sound with --seconds");
  if (!encoder.is_text() && !r.to_file)
    throw Error("-o", "is needed: " + a_kind + " sample is written to a file",
                "e.g. -o sample" + std::string(encoder.output_extension()));

  // How long a sample is and what its prompt holds are told by options of each modality's
  // own (the rest of a modality is its encoder's), so a new modality is planned here too.
  const model::ModelConfig& m = checkpoint.config.model;
  switch (modality) {
    case Modality::image: return plan_image(r, m);
    case Modality::audio: return plan_audio(r, m, warn);
    case Modality::text: break;
  }
  return plan_text(r, m.context, prompt_stdin, warn);
}

}  // namespace mb::train
