// megabyte sample: load a checkpoint, plan the samples from the prompt (lib/train/sample_plan),
// generate them (lib/train/generate_samples) and write them as the checkpoint's modality: text,
// a PNG, a WAV.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <span>

#include "backend/backend.hpp"
#include "command.hpp"
#include "device_options.hpp"
#include "core/error.hpp"
#include "core/interruptible_stdin.hpp"
#include "core/log.hpp"
#include "core/progress.hpp"
#include "data/encoders/registry.hpp"
#include "model/checkpoint.hpp"
#include "model/load_model.hpp"
#include "model/model.hpp"
#include "model/sampling.hpp"
#include "train/generate_samples.hpp"
#include "train/sample_plan.hpp"

namespace mb::tools {

namespace {

namespace fs = std::filesystem;

// Below this global stack width, sampling runs on one thread unless -j says otherwise.
constexpr int kThreadedWidth = 2048;

struct SampleArgs {
  std::string checkpoint, output;
  train::SampleRequest request;  // the prompt, and the length and layout of a sample
  train::SampleOptions samples;  // how many, side by side, drawn how
  int threads = 0;
  DeviceOptions devices;
  bool continuation = false;
};

// OUT for one sample, OUT-I.EXT for sample I of several.
fs::path numbered(const fs::path& out, int i, int n) {
  if (n == 1) return out;
  fs::path p = out;
  p.replace_filename(out.stem().string() + "-" + std::to_string(i) + out.extension().string());
  return p;
}

// Where a finished sample goes: its numbered file, in the modality's format; or stdout, whole
// (under a header when there are several) unless it was streamed there as it grew.
struct SampleWriter {
  const SampleArgs& args;
  const train::SamplePlan& plan;
  bool streamed;  // its bytes are on stdout already
  bool tty_out;   // stdout is a terminal

  void operator()(int i, const std::vector<std::uint8_t>& all) const {
    const int count = args.samples.count;
    // Text is written without its prompt for --continuation.
    const data::Encoder& encoder = data::encoder_for(plan.modality);
    const std::size_t skip = args.continuation && encoder.is_text() ? plan.prompt.size() : 0;
    if (args.output.empty()) {
      if (!streamed) {
        if (count > 1) std::printf("%s==> sample %d of %d <==\n", i > 1 ? "\n" : "", i, count);
        std::fwrite(all.data() + skip, 1, all.size() - skip, stdout);
      }
      if ((count > 1 || tty_out) && !all.empty() && all.back() != '\n') std::fputc('\n', stdout);
      std::fflush(stdout);
      return;
    }
    const fs::path path = numbered(args.output, i, count);
    encoder.write_file(path, std::span(all).subspan(skip), plan.layout());
    log_verbose("wrote " + path.string());
  }
};

int run_sample(const SampleArgs& a) {
  model::validate_sampling(a.samples.sampling, "sample");
  const fs::path dir = model::resolve_checkpoint(a.checkpoint);
  const model::CheckpointInfo info = model::read_checkpoint_info(dir, false);  // load_model checks
  train::SampleRequest request = a.request;
  request.to_file = !a.output.empty();
  InterruptibleStdin stdin_input(g_interrupted);  // Ctrl-C ends a wait for input
  const train::SamplePlan plan = train::plan_sample(
      request, info, stdin_input, [](const std::string& line) { log_warning(line); });
  const model::ModelConfig& m = info.config.model;
  // One generation step is a few matrix-vector products per layer: for a narrow model (the
  // tiny configs' 256) tens of microseconds each, less than it costs to wake a second thread
  // for it, and on a machine whose other cores are busy every such wake-up waits for the
  // scheduler (measured: 2 threads beside one busy process, 10 bytes/s instead of 9000).
  // Wide models have products worth sharing.
  const bool narrow = m.global_width() < kThreadedWidth;
  backend::set_cpu_threads(a.threads > 0 ? a.threads : narrow ? 1 : 0);  // 0: as they are
  // Weights only: the generator keeps its own caches, and a training window's activations
  // and gradients would only take device memory.
  auto net = model::load_model(dir, m, 0, a.devices.make_backend());

  const int count = a.samples.count;
  const bool to_stdout = a.output.empty();
  const bool tty_out = to_stdout && ::isatty(STDOUT_FILENO);
  // One sample to stdout is streamed byte by byte as it is generated; several are printed
  // whole, in order, as each group completes.
  const bool stream = to_stdout && count == 1;
  log_verbose("sample: " + dir.string() + ", step " + std::to_string(info.step) + ", " +
              std::string(data::modality_name(plan.modality)) + ", prompt " +
              std::to_string(plan.prompt.size()) + " bytes, " + std::to_string(plan.new_bytes()) +
              " new bytes per sample, " + std::to_string(train::samples_side_by_side(a.samples)) +
              " at a time on " + net->backend()->description());
  // Text streamed to a terminal shows its own progress; a progress line would garble it.
  std::optional<Progress> progress;
  if (!(stream && tty_out))
    progress.emplace("sample", static_cast<std::uint64_t>(plan.new_bytes()) * count, "bytes");

  train::SampleOptions options = a.samples;
  options.interrupted = [] { return g_interrupted.load(); };
  if (progress) options.progress = [&](std::uint64_t bytes) { progress->update(bytes, bytes); };
  if (stream)
    options.on_byte = [](int, std::uint8_t byte) {
      std::fputc(byte, stdout);
      std::fflush(stdout);  // a model step costs far more than the write
    };
  options.on_sample = SampleWriter{a, plan, stream, tty_out};

  const auto start = std::chrono::steady_clock::now();
  if (stream) {
    if (!a.continuation) std::fwrite(plan.prompt.data(), 1, plan.prompt.size(), stdout);
    std::fflush(stdout);
  }
  const train::SampleRun run = train::generate_samples(*net, plan.prompt, plan.length, options);
  if (progress) progress->finish();
  if (run.interrupted) {
    std::fflush(stdout);
    log_info("interrupted after " +
             human_count(run.completed, "complete sample", "complete samples") +
             (stream ? "" : "; nothing of the unfinished ones was written"));
    return kExitInterrupted;
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  char line[160];
  std::snprintf(line, sizeof line, "sampled %s in %.2f s (%.0f bytes/s), %s of KV caches",
                human_count(static_cast<std::int64_t>(run.new_bytes), "byte", "bytes").c_str(),
                secs, secs > 0 ? static_cast<double>(run.new_bytes) / secs : 0.0,
                human_bytes(static_cast<double>(run.cache_bytes)).c_str());
  log_info(line);
  return kExitOk;
}

}  // namespace

RunFunction add_sample_command(CLI::App& app) {
  auto a = std::make_shared<SampleArgs>();
  CLI::App* sub =
      app.add_subcommand("sample", "Generate text, an image or a sound from a trained checkpoint");
  sub->footer(
      "\nExamples:\n"
      "  megabyte sample runs/kjv --prompt 'In the beginning' --bytes 300\n"
      "  megabyte sample runs/kjv -n 3 --temperature 0.8 --top-p 0.95 -o kjv.txt   (kjv-1.txt "
      "...)\n"
      "  megabyte sample runs/im64 --image-size 64 --prompt-file cat.jpg --prompt-rows 32 -o "
      "cat.png\n"
      "  megabyte sample runs/speech --sample-rate 16000 --seconds 4 -o speech.wav\n"
      "\nThe checkpoint's data.modality says what is made. The same --seed, -n and --batch give\n"
      "the same bytes.\n"
      "See megabyte-sample(1).");
  sub->add_option(
         "CHECKPOINT", a->checkpoint,
         "A run directory (its newest checkpoint), a checkpoint directory or its model.safetensors")
      ->required();
  CLI::Option* prompt =
      sub->add_option("--prompt", a->request.prompt, "Text: the prompt, as bytes");
  CLI::Option* prompt_file = sub->add_option("--prompt-file", a->request.prompt_file,
                                             "A prompt file ('-': stdin): text as it is, an image "
                                             "(its top rows kept), a sound (its start kept)");
  prompt->excludes(prompt_file);
  CLI::Option* bytes =
      sub->add_option("--bytes", a->request.bytes,
                      "Text: bytes to generate after the prompt (capped at the context)")
          ->check(CLI::Range(0, 1 << 30))
          ->capture_default_str();
  sub->add_option("-n,--samples", a->samples.count, "How many samples")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  sub->add_option("--temperature", a->samples.sampling.temperature,
                  "Divide the logits by this; 0 is greedy")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  sub->add_option("--top-k", a->samples.sampling.top_k,
                  "Sample among the k most likely bytes (0: all)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  sub->add_option("--top-p", a->samples.sampling.top_p,
                  "Sample among the most likely bytes holding this probability (1: all)")
      ->check(CLI::Range(1e-9, 1.0))
      ->capture_default_str();
  sub->add_option(
         "--seed", a->samples.seed,
         "Seed of the sampler: the same seed (with the same -n and --batch) gives the same bytes")
      ->capture_default_str();
  sub->add_option(
      "-o,--output", a->output,
      "Write to this file (OUT-1.EXT, OUT-2.EXT, ... for several); text: default stdout");
  sub->add_flag("--continuation", a->continuation,
                "Text: write only the generated bytes, not the prompt");
  sub->add_option("--batch", a->samples.batch,
                  "Samples generated side by side (of -n; a step serves them all)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  add_device_options(sub, a->devices);
  sub->add_option("-j,--threads", a->threads,
                  "CPU threads (default: 1 for a model narrower than 2048, all otherwise)")
      ->check(CLI::Range(1, 4096));
  CLI::Option* image_size =
      sub->add_option(
             "--image-size", a->request.image_size,
             "Images: the side S of the dataset's S x S images (default: as recorded at training)")
          ->check(CLI::Range(1, 65536));
  CLI::Option* patch =
      sub->add_option("--patch-size", a->request.patch_size,
                      "Images: the dataset's scan patch size 3*p*p (default: model.patch_size)")
          ->check(CLI::Range(3, 1 << 30));
  CLI::Option* rows =
      sub->add_option("--prompt-rows", a->request.prompt_rows,
                      "Images: keep the top R pixel rows of the prompt image (default: half)")
          ->check(CLI::Range(0, 65536));
  CLI::Option* seconds = sub->add_option("--seconds", a->request.seconds,
                                         "Audio: length of the sound, prompt included")
                             ->check(CLI::Range(1e-6, 1e6))
                             ->capture_default_str();
  CLI::Option* rate = sub->add_option("--sample-rate", a->request.sample_rate,
                                      "Audio: the dataset's sample rate in Hz (default: as "
                                      "recorded at training, else 16000)")
                          ->check(CLI::Range(1000, 384000))
                          ->capture_default_str();
  CLI::Option* prompt_seconds =
      sub->add_option("--prompt-seconds", a->request.prompt_seconds,
                      "Audio: keep this much of the prompt sound (default: half of --seconds)")
          ->check(CLI::Range(0.0, 1e6));
  return [a, prompt, bytes, image_size, patch, rows, seconds, rate, prompt_seconds] {
    train::SampleRequest::Given& given = a->request.given;
    given.prompt = prompt->count() > 0;
    given.bytes = bytes->count() > 0;
    given.image_options = image_size->count() + patch->count() + rows->count() > 0;
    given.audio_options = seconds->count() + rate->count() + prompt_seconds->count() > 0;
    given.sample_rate = rate->count() > 0;
    return run_sample(*a);
  };
}

}  // namespace mb::tools
