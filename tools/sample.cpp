// megabyte sample: load a checkpoint, feed a prompt, generate bytes with the cached generator
// (lib/model/generator.hpp) and write them as the checkpoint's modality: text, a PNG, a WAV.
#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <optional>

#include "backend/backend.hpp"
#include "command.hpp"
#include "device_options.hpp"
#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/file_io.hpp"
#include "core/log.hpp"
#include "core/progress.hpp"
#include "data/encoders/audio.hpp"
#include "data/encoders/image.hpp"
#include "model/checkpoint.hpp"
#include "model/generator.hpp"
#include "model/model.hpp"
#include "model/sampling.hpp"

namespace mb::tools {

namespace {

namespace fs = std::filesystem;
using data::Modality;

// Below this global stack width, sampling runs on one thread unless -j says otherwise.
constexpr int kThreadedWidth = 2048;

struct SampleArgs {
  std::string checkpoint, prompt, prompt_file, output;
  int bytes = 512;
  int count = 1;
  model::SamplingOptions sampling;
  std::uint64_t seed = 1;
  int threads = 0;
  int batch = 8;
  DeviceOptions devices;
  bool continuation = false;
  // images
  int image_size = 0;
  int patch_size = 0;
  int prompt_rows = -1;
  // audio
  double seconds = 2.0;
  int sample_rate = 16000;
  double prompt_seconds = -1.0;
  // which options were given (CLI11 counts)
  bool has_prompt = false, has_bytes = false, has_image = false, has_audio = false;
  bool has_rate = false;   // --sample-rate given (else: the rate recorded at training)
};

// What to generate: the prompt, the length of each sample (prompt included) and how to write it.
struct Plan {
  std::vector<std::uint8_t> prompt;
  int total = 0;
  Modality modality = Modality::text;
  data::ImageParams image;
  data::AudioParams audio;
};

std::vector<std::uint8_t> read_prompt_file(const std::string& path) {
  if (path != "-") return read_whole_file(path);
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  return bytes;
}

// "0.1", "2", "0.032": seconds as a person writes them.
std::string decimal(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

std::string plural(std::int64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

Plan plan_text(const SampleArgs& a, int T) {
  Plan p;
  p.prompt = a.prompt_file.empty() ? std::vector<std::uint8_t>(a.prompt.begin(), a.prompt.end())
                                   : read_prompt_file(a.prompt_file);
  const std::string where = a.prompt_file.empty() ? "--prompt" : a.prompt_file == "-" ? "stdin" : a.prompt_file;
  if (static_cast<std::int64_t>(p.prompt.size()) >= T)
    throw Error(where, "the prompt is " + plural(static_cast<std::int64_t>(p.prompt.size()), "byte", "bytes") +
                           " but the model's context is " + std::to_string(T) +
                           " bytes, prompt and sample together",
                "give a prompt of at most " + std::to_string(T - 1) + " bytes, e.g. the end of this one");
  const int room = T - static_cast<int>(p.prompt.size());
  int n = a.bytes;
  if (n > room) {
    log_warning("--bytes " + std::to_string(n) + " capped at " + std::to_string(room) + ": the model's context is " +
                std::to_string(T) + " bytes" + (p.prompt.empty() ? "" : ", the prompt included"));
    n = room;
  }
  p.total = static_cast<int>(p.prompt.size()) + n;
  return p;
}

Plan plan_image(const SampleArgs& a, const model::ModelConfig& m) {
  Plan p;
  p.modality = Modality::image;
  if (a.image_size == 0)
    throw Error("--image-size", "is needed to sample an image model",
                "give the image size of the dataset it was trained on: image_size in its dataset.yaml");
  if (a.has_prompt)
    throw Error("--prompt", "is text; an image model takes an image prompt",
                "give a picture with --prompt-file (its top --prompt-rows rows are kept)");
  // The dataset's scan order is not in the checkpoint: a MEGABYTE model was trained with
  // patches of its own size (train checks it), a transformer needs to be told.
  p.image.image_size = a.image_size;
  p.image.patch_size = a.patch_size > 0 ? a.patch_size : m.kind == model::ModelKind::megabyte ? m.patch_size : 0;
  if (p.image.patch_size == 0)
    throw Error("--patch-size", "is needed to sample an image with a byte transformer",
                "give the patch size of the dataset it was trained on: patch_size in its dataset.yaml");
  p.image.validate(a.patch_size > 0 ? "--patch-size" : "--image-size");
  const std::int64_t total = std::int64_t{a.image_size} * a.image_size * 3;
  if (total > m.context)
    throw Error("--image-size", "an image of " + std::to_string(a.image_size) + "x" + std::to_string(a.image_size) +
                                    " is " + std::to_string(total) + " bytes, more than the model's context of " +
                                    std::to_string(m.context),
                "the model generates whole images of at most " + std::to_string(m.context) + " bytes");
  p.total = static_cast<int>(total);
  const int side = p.image.block_side(), S = a.image_size;
  if (a.prompt_file.empty()) {
    if (a.prompt_rows >= 0) throw Error("--prompt-rows", "needs an image prompt", "give one with --prompt-file");
    return p;
  }
  // In patch-scan order the top R rows are the first R/side rows of blocks.
  const int rows = a.prompt_rows >= 0 ? a.prompt_rows : S / 2 / side * side;
  if (rows % side != 0 || rows >= S)
    throw Error("--prompt-rows", std::to_string(rows) + " rows cannot be kept of a " + std::to_string(S) +
                                     "-pixel image scanned in blocks of " + std::to_string(side),
                "keep a multiple of " + std::to_string(side) + " rows, less than " + std::to_string(S));
  std::vector<std::uint8_t> scanned = data::encode_image_file(a.prompt_file, p.image);
  const std::size_t keep = static_cast<std::size_t>(rows / side) * (S / side) * p.image.patch_size;
  scanned.resize(keep);
  p.prompt = std::move(scanned);
  return p;
}

Plan plan_audio(const SampleArgs& a, const model::ModelConfig& m) {
  Plan p;
  p.modality = Modality::audio;
  if (a.has_prompt)
    throw Error("--prompt", "is text; an audio model takes a sound prompt", "give a sound file with --prompt-file");
  p.audio.sample_rate = a.sample_rate;
  p.audio.validate("--sample-rate");
  const int bps = data::AudioParams::bytes_per_sample;
  const std::int64_t want = std::llround(a.seconds * a.sample_rate) * bps;
  const int cap = m.context / bps * bps;
  p.total = static_cast<int>(std::min<std::int64_t>(want, cap));
  if (want > cap)
    log_warning("--seconds " + decimal(a.seconds) + " capped at " +
                decimal(static_cast<double>(cap) / bps / a.sample_rate) + " s: the model's context is " +
                std::to_string(m.context) + " bytes, " + std::to_string(m.context / bps) + " samples");
  if (p.total < bps) throw Error("--seconds", "is shorter than one sample", "ask for more");
  if (a.prompt_file.empty()) {
    if (a.prompt_seconds >= 0)
      throw Error("--prompt-seconds", "needs a sound prompt", "give one with --prompt-file");
    return p;
  }
  std::vector<std::uint8_t> pcm = data::encode_audio_file(a.prompt_file, p.audio);
  const double secs = a.prompt_seconds >= 0 ? a.prompt_seconds : static_cast<double>(p.total) / bps / a.sample_rate / 2;
  const std::size_t keep = std::min<std::size_t>(pcm.size() / bps * bps, std::llround(secs * a.sample_rate) * bps);
  if (static_cast<std::int64_t>(keep) >= p.total)
    throw Error("--prompt-seconds", "the prompt (" + std::to_string(keep / bps) + " samples) fills the whole sound of " +
                                        std::to_string(p.total / bps) + " samples",
                "keep less of the prompt or ask for more --seconds");
  pcm.resize(keep);
  p.prompt = std::move(pcm);
  return p;
}

// OUT for one sample, OUT-I.EXT for sample I of several.
fs::path numbered(const fs::path& out, int i, int n) {
  if (n == 1) return out;
  fs::path p = out;
  p.replace_filename(out.stem().string() + "-" + std::to_string(i) + out.extension().string());
  return p;
}

int run_sample(const SampleArgs& given) {
  model::validate_sampling(given.sampling, "sample");
  const fs::path dir = model::resolve_checkpoint(given.checkpoint);
  const model::CheckpointInfo info = model::read_checkpoint_info(dir, false);   // load_weights checks
  // The dataset's layout, as training recorded it, is the default of the layout options.
  SampleArgs a = given;
  if (info.has_encoder && info.config.data.modality == Modality::image) {
    if (a.image_size == 0) a.image_size = info.encoder.image.image_size;
    if (a.patch_size == 0) a.patch_size = info.encoder.image.patch_size;
  }
  if (info.has_encoder && info.config.data.modality == Modality::audio && !a.has_rate)
    a.sample_rate = info.encoder.audio.sample_rate;
  const model::ModelConfig& m = info.config.model;
  const Modality modality = info.config.data.modality;
  const std::string kind = std::string(data::modality_name(modality));
  const std::string a_kind = (modality == Modality::text ? "a " : "an ") + kind;
  if (modality != Modality::image && a.has_image)
    throw Error("--image-size, --patch-size, --prompt-rows",
                "are for image models; this checkpoint is " + a_kind + " model", "leave them out");
  if (modality != Modality::audio && a.has_audio)
    throw Error("--seconds, --sample-rate, --prompt-seconds",
                "are for audio models; this checkpoint is " + a_kind + " model", "leave them out");
  if (modality != Modality::text && a.has_bytes)
    throw Error("--bytes", "is for text models; this checkpoint is " + a_kind + " model",
                modality == Modality::image ? "an image model makes whole images of --image-size"
                                            : "give the length of the sound with --seconds");
  if (modality != Modality::text && a.output.empty())
    throw Error("-o", "is needed: an " + kind + " sample is written to a file",
                modality == Modality::image ? "e.g. -o sample.png" : "e.g. -o sample.wav");

  const Plan plan = modality == Modality::text    ? plan_text(a, m.context)
                    : modality == Modality::image ? plan_image(a, m)
                                                  : plan_audio(a, m);
  // One generation step is a few matrix-vector products per layer: for a narrow model (the
  // tiny configs' 256) tens of microseconds each, less than it costs to wake a second thread
  // for it, and on a machine whose other cores are busy every such wake-up waits for the
  // scheduler (measured: 2 threads beside one busy process, 10 bytes/s instead of 9000).
  // Wide models have products worth sharing.
  if (a.threads > 0) omp_set_num_threads(a.threads);
  else if (m.global_width() < kThreadedWidth) omp_set_num_threads(1);
  auto net = model::make_model(m, 1, a.devices.make_backend());
  model::load_weights(dir, net->parameters());
  net->upload_parameters();
  // Samples are generated `batch` at a time, side by side: one step multiplies all of their
  // rows by each weight matrix at once (see model/generator.hpp).
  const int group_size = std::min(a.count, a.batch);
  model::Generator gen(*net, group_size);

  const int prompt = static_cast<int>(plan.prompt.size());
  const int new_bytes = plan.total - prompt;
  const bool to_stdout = a.output.empty();
  const bool tty_out = to_stdout && ::isatty(STDOUT_FILENO);
  // One sample to stdout is streamed byte by byte as it is generated; several are printed
  // whole, in order, as each group completes.
  const bool stream = to_stdout && a.count == 1;
  log_verbose("sample: " + dir.string() + ", step " + std::to_string(info.step) + ", " + kind + ", prompt " +
              std::to_string(prompt) + " bytes, " + std::to_string(new_bytes) + " new bytes per sample, " +
              std::to_string(group_size) + " at a time on " + net->backend()->description());
  // Text streamed to a terminal shows its own progress; a progress line would garble it.
  std::optional<Progress> progress;
  if (!(stream && tty_out)) progress.emplace("sample", static_cast<std::uint64_t>(new_bytes) * a.count, "bytes");

  const auto start = std::chrono::steady_clock::now();
  std::uint64_t generated = 0;
  std::vector<std::uint8_t> next(static_cast<std::size_t>(group_size));
  for (int first = 1; first <= a.count; first += group_size) {
    // Samples first .. first+n-1; sequences of the generator past n are generated and dropped
    // (the last group may be smaller than the batch).
    const int n = std::min(group_size, a.count - first + 1);
    gen.reset();
    for (std::uint8_t b : plan.prompt) gen.feed(b);
    std::vector<model::Rng> rngs;   // sample i draws from its own stream: alone reproducible
    for (int j = 0; j < group_size; ++j)
      rngs.emplace_back(a.seed, static_cast<std::uint64_t>(first - 1 + j));
    if (stream) {
      if (!a.continuation) std::fwrite(plan.prompt.data(), 1, plan.prompt.size(), stdout);
      std::fflush(stdout);
    }
    for (int t = 0; t < new_bytes; ++t) {
      if (g_interrupted.load()) {
        if (progress) progress->finish();
        std::fflush(stdout);
        log_info("interrupted after " + plural(first - 1, "complete sample", "complete samples") +
                 (stream ? "" : "; nothing of the unfinished ones was written"));
        return kExitInterrupted;
      }
      const float* logits = gen.next_logits();
      for (int j = 0; j < group_size; ++j)
        next[j] = static_cast<std::uint8_t>(model::sample_index(
            logits + static_cast<std::size_t>(j) * model::kByteValues, model::kByteValues, a.sampling, rngs[j]));
      gen.feed_each(next.data());
      generated += static_cast<std::uint64_t>(n);
      if (stream) {
        std::fputc(next[0], stdout);
        std::fflush(stdout);   // a model step costs far more than the write
      }
      if (progress) progress->update(generated, generated);
    }
    for (int j = 0; j < n; ++j) {
      const int i = first + j;
      const std::vector<std::uint8_t>& all = gen.bytes(j);
      if (to_stdout) {
        if (!stream) {
          if (a.count > 1) std::printf("%s==> sample %d of %d <==\n", i > 1 ? "\n" : "", i, a.count);
          const std::size_t skip = a.continuation ? plan.prompt.size() : 0;
          std::fwrite(all.data() + skip, 1, all.size() - skip, stdout);
        }
        if ((a.count > 1 || tty_out) && !all.empty() && all.back() != '\n') std::fputc('\n', stdout);
        std::fflush(stdout);
        continue;
      }
      const fs::path path = numbered(a.output, i, a.count);
      if (plan.modality == Modality::image) {
        data::write_png(path, all, plan.image);
      } else if (plan.modality == Modality::audio) {
        data::write_wav(path, all, plan.audio);
      } else {
        const std::size_t skip = a.continuation ? plan.prompt.size() : 0;
        write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(all.data()) + skip, all.size() - skip));
      }
      log_verbose("wrote " + path.string());
    }
  }
  if (progress) progress->finish();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  char line[160];
  std::snprintf(line, sizeof line, "sampled %s in %.2f s (%.0f bytes/s)",
                plural(static_cast<std::int64_t>(generated), "byte", "bytes").c_str(), secs,
                secs > 0 ? static_cast<double>(generated) / secs : 0.0);
  log_info(line);
  return kExitOk;
}

}  // namespace

RunFunction add_sample_command(CLI::App& app) {
  auto a = std::make_shared<SampleArgs>();
  CLI::App* sub = app.add_subcommand("sample", "Generate text, an image or a sound from a trained checkpoint");
  sub->footer(
      "\nExamples:\n"
      "  megabyte sample runs/kjv --prompt 'In the beginning' --bytes 300\n"
      "  megabyte sample runs/kjv -n 3 --temperature 0.8 --top-p 0.95 -o kjv.txt   (kjv-1.txt ...)\n"
      "  megabyte sample runs/im64 --image-size 64 --prompt-file cat.jpg --prompt-rows 32 -o cat.png\n"
      "  megabyte sample runs/speech --sample-rate 16000 --seconds 4 -o speech.wav\n"
      "\nThe checkpoint's data.modality says what is made. The same --seed gives the same bytes.\n"
      "See megabyte-sample(1).");
  sub->add_option("CHECKPOINT", a->checkpoint,
                  "A run directory (its newest checkpoint), a checkpoint directory or its model.safetensors")
      ->required();
  CLI::Option* prompt = sub->add_option("--prompt", a->prompt, "Text: the prompt, as bytes");
  CLI::Option* prompt_file = sub->add_option(
      "--prompt-file", a->prompt_file,
      "A prompt file ('-': stdin): text as it is, an image (its top rows kept), a sound (its start kept)");
  prompt->excludes(prompt_file);
  CLI::Option* bytes = sub->add_option("--bytes", a->bytes, "Text: bytes to generate after the prompt (capped at the context)")
      ->check(CLI::Range(0, 1 << 30))->capture_default_str();
  sub->add_option("-n,--samples", a->count, "How many samples")->check(CLI::Range(1, 1000000))->capture_default_str();
  sub->add_option("--temperature", a->sampling.temperature, "Divide the logits by this; 0 is greedy")
      ->check(CLI::Range(0.0, 1e6))->capture_default_str();
  sub->add_option("--top-k", a->sampling.top_k, "Sample among the k most likely bytes (0: all)")
      ->check(CLI::Range(0, 256))->capture_default_str();
  sub->add_option("--top-p", a->sampling.top_p, "Sample among the most likely bytes holding this probability (1: all)")
      ->check(CLI::Range(1e-9, 1.0))->capture_default_str();
  sub->add_option("--seed", a->seed, "Seed of the sampler: the same seed gives the same bytes")->capture_default_str();
  sub->add_option("-o,--output", a->output, "Write to this file (OUT-1.EXT, OUT-2.EXT, ... for several); text: default stdout");
  sub->add_flag("--continuation", a->continuation, "Text: write only the generated bytes, not the prompt");
  sub->add_option("--batch", a->batch, "Samples generated side by side (of -n; a step serves them all)")
      ->check(CLI::Range(1, 4096))->capture_default_str();
  add_device_options(sub, a->devices);
  sub->add_option("-j,--threads", a->threads, "CPU threads (default: 1 for a model narrower than 2048, all otherwise)")->check(CLI::Range(1, 4096));
  CLI::Option* image_size = sub->add_option("--image-size", a->image_size, "Images: the side S of the dataset's S x S images (default: as recorded at training)")
      ->check(CLI::Range(1, 65536));
  CLI::Option* patch = sub->add_option("--patch-size", a->patch_size,
                                       "Images: the dataset's scan patch size 3*p*p (default: model.patch_size)")
      ->check(CLI::Range(3, 1 << 30));
  CLI::Option* rows = sub->add_option("--prompt-rows", a->prompt_rows,
                                      "Images: keep the top R pixel rows of the prompt image (default: half)")
      ->check(CLI::Range(0, 65536));
  CLI::Option* seconds = sub->add_option("--seconds", a->seconds, "Audio: length of the sound, prompt included")
      ->check(CLI::Range(1e-6, 1e6))->capture_default_str();
  CLI::Option* rate = sub->add_option("--sample-rate", a->sample_rate, "Audio: the dataset's sample rate in Hz (default: as recorded at training, else 16000)")
      ->check(CLI::Range(1000, 384000))->capture_default_str();
  CLI::Option* prompt_seconds = sub->add_option("--prompt-seconds", a->prompt_seconds,
                                                "Audio: keep this much of the prompt sound (default: half of --seconds)")
      ->check(CLI::Range(0.0, 1e6));
  return [a, prompt, bytes, image_size, patch, rows, seconds, rate, prompt_seconds] {
    a->has_prompt = prompt->count() > 0;
    a->has_bytes = bytes->count() > 0;
    a->has_image = image_size->count() + patch->count() + rows->count() > 0;
    a->has_audio = seconds->count() + rate->count() + prompt_seconds->count() > 0;
    a->has_rate = rate->count() > 0;
    return run_sample(*a);
  };
}

}  // namespace mb::tools
