// megabyte prepare: files, directories or a list on stdin -> a sharded zstd dataset.
#include <iostream>
#include <string>
#include <vector>

#include "command.hpp"
#include "core/error.hpp"
#include "core/interruptible_stdin.hpp"
#include "core/log.hpp"
#include "core/progress.hpp"
#include "data/encoders/registry.hpp"
#include "data/input_files.hpp"
#include "data/prepare.hpp"
#include "report.hpp"

namespace mb::tools {

namespace {

struct PrepareArgs {
  std::vector<std::string> inputs;
  std::string output;
  std::string modality = "text";
  int image_size = 64;
  int patch_size = 12;
  int sample_rate = 16000;
  double val_fraction = 0.05;
  std::string val_files;
  std::uint64_t shard_size = 256ull << 20;
  std::uint64_t frame_size = 2ull << 20;
  int level = 3;
  unsigned threads = 0;
  bool skip_bad = false;
  bool json = false;
};

int run_prepare(const PrepareArgs& a) {
  data::PrepareOptions opt;
  opt.encoder.modality = data::parse_modality(a.modality, "--modality");
  opt.encoder.image.image_size = a.image_size;
  opt.encoder.image.patch_size = a.patch_size;
  opt.encoder.audio.sample_rate = a.sample_rate;
  opt.val_fraction = a.val_fraction;
  if (!a.val_files.empty()) opt.val_files = data::read_path_list_file(a.val_files);
  opt.writer.shard_bytes = a.shard_size;
  opt.writer.shard.frame_bytes = a.frame_size;
  opt.writer.shard.level = a.level;
  opt.threads = a.threads;
  opt.skip_bad = a.skip_bad;

  InterruptibleStdin stdin_input(g_interrupted);  // Ctrl-C ends a wait for input
  const std::vector<data::InputFile> files =
      data::list_inputs(a.inputs, opt.encoder.modality, stdin_input);
  log_verbose("prepare: " + std::to_string(files.size()) + " input files");
  Progress progress("prepare", files.size(), "files");
  auto report = data::prepare_dataset(
      a.output, files, opt,
      [&](std::uint64_t n, std::uint64_t bytes) { progress.update(n, bytes); }, &g_interrupted);
  progress.finish();
  if (a.json) {
    auto j = dataset_json(a.output, report.manifest);
    j["input_files"] = report.input_files;
    j["skipped_files"] = report.skipped.size();
    j["seconds"] = report.seconds;
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << dataset_table(a.output, report.manifest);
    if (!report.skipped.empty())
      std::cout << "skipped " << report.skipped.size() << " of " << report.input_files
                << " files that could not be read (listed above on stderr)\n";
  }
  if (report.manifest.find_split("validation")->documents == 0 &&
      (a.val_fraction > 0 || !a.val_files.empty()))
    log_warning("the validation split is empty; pass several files, or name them with --val-files");
  return kExitOk;
}

// The names of the modalities, as --modality takes them.
std::vector<std::string> modality_names() {
  std::vector<std::string> names;
  for (const data::Encoder* e : data::all_encoders()) names.emplace_back(e->name());
  return names;
}

}  // namespace

RunFunction add_prepare_command(CLI::App& app) {
  auto a = std::make_shared<PrepareArgs>();
  CLI::App* sub =
      app.add_subcommand("prepare", "Turn text files, images or audio into a sharded zstd dataset");
  sub->footer(
      "\nExamples:\n"
      "  megabyte prepare -o data/kjv books/              # every file under books/, as text\n"
      "  megabyte prepare -m image --image-size 64 -o data/im64 photos/\n"
      "  find sounds -name '*.flac' | megabyte prepare -m audio -o data/audio -\n"
      "\nSee megabyte-prepare(1) and megabyte-dataset(5).");
  sub->add_option("inputs", a->inputs,
                  "Files, directories (walked recursively) or - for a list of paths on stdin")
      ->required();
  sub->add_option("-o,--output", a->output, "The dataset directory to create (must not exist)")
      ->required();
  sub->add_option("-m,--modality", a->modality, "What the inputs are")
      ->check(CLI::IsMember(modality_names()))
      ->capture_default_str();
  sub->add_option("--image-size", a->image_size, "Images: side S of the S x S crop")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  sub->add_option("--patch-size", a->patch_size,
                  "Images: patch size P = 3*p*p bytes (a p x p pixel block)")
      ->check(CLI::Range(3, 1 << 30))
      ->capture_default_str();
  sub->add_option("--sample-rate", a->sample_rate,
                  "Audio: dataset sample rate in Hz (16-bit mono PCM)")
      ->check(CLI::Range(1000, 384000))
      ->capture_default_str();
  sub->add_option("--val-fraction", a->val_fraction,
                  "Fraction of files for the validation split (by a hash of the path)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("--val-files", a->val_files,
                  "A file listing the paths of the validation split, one per line")
      ->check(CLI::ExistingFile);
  sub->add_option("--shard-size", a->shard_size,
                  "Content bytes per shard (accepts K, M, G suffixes: 256M)")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  sub->add_option("--frame-size", a->frame_size,
                  "Content bytes per zstd frame, the unit of random access")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  sub->add_option("-l,--level", a->level, "zstd compression level")
      ->check(CLI::Range(1, 19))
      ->capture_default_str();
  sub->add_option("-j,--threads", a->threads, "Worker threads (default: all hardware threads)");
  sub->add_flag("--skip-bad", a->skip_bad,
                "Skip (and report) inputs that cannot be read or decoded instead of stopping");
  sub->add_flag("--json", a->json, "Print the summary as JSON");
  return [a] {
    if (a->frame_size == 0) throw Error("--frame-size", "must be at least 1 byte");
    if (a->shard_size == 0) throw Error("--shard-size", "must be at least 1 byte");
    return run_prepare(*a);
  };
}

}  // namespace mb::tools
