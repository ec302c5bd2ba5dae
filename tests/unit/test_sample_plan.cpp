// What `sample` plans to generate: text prompts (inline, from a file, from stdin) with --bytes
// capped at the context and a warning that says so; images (recorded geometry as the default,
// the prompt's top rows in patch-scan order, sizes and patches that do not fit refused); sounds
// (seconds to bytes at the rate, capped at the context, the prompt's start kept); and options
// of another modality refused.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "error_of.hpp"
#include "core/atomic_file.hpp"
#include "data/encoders/audio.hpp"
#include "data/encoders/image.hpp"
#include "model/checkpoint.hpp"
#include "temp_dir.hpp"
#include "train/sample_plan.hpp"

using namespace mb::train;
using mb::data::Modality;
using mb::test::contains;
using mb::test::error_of;
using mb::test::TempDir;

namespace {

// A checkpoint's description as sampling reads it: a MEGABYTE of context T and patch P.
mb::model::CheckpointInfo checkpoint(Modality modality, int T, int P) {
  mb::model::CheckpointInfo info;
  info.config.data.modality = modality;
  info.config.model.kind = mb::model::ModelKind::megabyte;
  info.config.model.context = T;
  info.config.model.patch_size = P;
  return info;
}

// plan_sample with no stdin, collecting its warnings.
struct Planner {
  std::vector<std::string> warnings;
  SamplePlan operator()(const SampleRequest& r, const mb::model::CheckpointInfo& info,
                        const std::string& stdin_bytes = "") {
    std::istringstream in(stdin_bytes);
    return plan_sample(r, info, in, [this](const std::string& line) { warnings.push_back(line); });
  }
};

std::vector<std::uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

}  // namespace

TEST_CASE("text plan: the prompt, then --bytes more; a prompt may end inside a patch") {
  const auto info = checkpoint(Modality::text, 16, 4);
  Planner plan;
  SampleRequest r;
  r.prompt = "hello";  // 5 bytes: one patch and one byte into the next
  r.given.prompt = true;
  r.bytes = 7;
  const SamplePlan p = plan(r, info);
  CHECK(p.modality == Modality::text);
  CHECK(p.prompt == bytes_of("hello"));
  CHECK(p.length == 12);
  CHECK(p.new_bytes() == 7);
  CHECK(plan.warnings.empty());

  // Up to the context exactly, no warning.
  r.bytes = 11;
  CHECK(plan(r, info).length == 16);
  CHECK(plan.warnings.empty());
}

TEST_CASE("text plan: --bytes beyond the context is capped, with a warning") {
  const auto info = checkpoint(Modality::text, 16, 4);
  Planner plan;
  SampleRequest r;
  r.bytes = 100;
  SamplePlan p = plan(r, info);
  CHECK(p.prompt.empty());
  CHECK(p.length == 16);
  REQUIRE(plan.warnings.size() == 1);
  CHECK(plan.warnings[0] == "--bytes 100 capped at 16: the model's context is 16 bytes");

  r.prompt = "abc";
  r.given.prompt = true;
  p = plan(r, info);
  CHECK(p.length == 16);
  CHECK(p.new_bytes() == 13);
  REQUIRE(plan.warnings.size() == 2);
  CHECK(plan.warnings[1] ==
        "--bytes 100 capped at 13: the model's context is 16 bytes, the prompt included");
}

TEST_CASE("text plan: a prompt that fills the context is refused, named by where it came from") {
  const auto info = checkpoint(Modality::text, 16, 4);
  Planner plan;
  SampleRequest r;
  r.prompt = std::string(16, 'a');
  r.given.prompt = true;
  const std::string e = error_of([&] { plan(r, info); });
  CHECK(contains(e, "--prompt: the prompt is 16 bytes but the model's context is 16 bytes"));
  CHECK(contains(e, "at most 15 bytes"));
  // One byte less leaves room for one new byte.
  r.prompt.pop_back();
  r.bytes = 5;
  CHECK(plan(r, info).length == 16);
  CHECK(plan.warnings.size() == 1);

  SampleRequest from_stdin;
  from_stdin.prompt_file = "-";
  CHECK(contains(error_of([&] { plan(from_stdin, info, std::string(20, 'x')); }),
                 "stdin: the prompt is 20 bytes"));
}

TEST_CASE("text plan: a prompt file and stdin give their bytes as they are") {
  TempDir dir("sample-plan-text");
  const std::string text("line one\n\0\xff end", 15);
  const auto path = dir.path / "prompt.txt";
  mb::write_file_atomic(path, text);
  const auto info = checkpoint(Modality::text, 64, 8);
  Planner plan;
  const auto from = [](const std::string& file) {
    SampleRequest r;
    r.bytes = 10;
    r.prompt_file = file;
    return r;
  };
  CHECK(plan(from(path.string()), info).prompt == bytes_of(text));
  CHECK(plan(from("-"), info, text).prompt == bytes_of(text));
  CHECK(contains(error_of([&] { plan(from((dir.path / "missing.txt").string()), info); }),
                 "missing.txt: cannot open"));
}

TEST_CASE("sample plan: options of another modality are refused, and images and sounds need -o") {
  Planner plan;
  SampleRequest r;
  r.given.image_options = true;
  CHECK(contains(error_of([&] { plan(r, checkpoint(Modality::text, 16, 4)); }),
                 "--image-size, --patch-size, --prompt-rows: are for image models; this checkpoint "
                 "is a text model"));
  r = {};
  r.given.audio_options = true;
  r.to_file = true;
  CHECK(contains(error_of([&] { plan(r, checkpoint(Modality::image, 3072, 48)); }),
                 "are for audio models; this checkpoint is an image model"));
  r = {};
  r.given.bytes = true;
  r.to_file = true;
  CHECK(contains(error_of([&] { plan(r, checkpoint(Modality::audio, 2048, 8)); }),
                 "--bytes: is for text models; this checkpoint is an audio model"));
  r = {};
  r.image_size = 32;
  CHECK(contains(error_of([&] { plan(r, checkpoint(Modality::image, 3072, 48)); }),
                 "-o: is needed: an image sample is written to a file"));
}

namespace {

// A 32 x 32 picture, in patch-scan order for 4 x 4-pixel blocks: every byte different from its
// neighbours, so that a prompt cut in the wrong place shows.
std::vector<std::uint8_t> test_picture(const mb::data::ImageParams& params) {
  std::vector<std::uint8_t> scanned(static_cast<std::size_t>(params.image_size) *
                                    params.image_size * 3);
  for (std::size_t i = 0; i < scanned.size(); ++i)
    scanned[i] = static_cast<std::uint8_t>(i * 7 + i / 251);
  return scanned;
}

}  // namespace

TEST_CASE("image plan: whole images; the prompt is the picture's top rows in patch-scan order") {
  TempDir dir("sample-plan-image");
  const mb::data::ImageParams params{32, 48};
  const std::vector<std::uint8_t> picture = test_picture(params);
  const auto png = dir.path / "top.png";
  mb::data::write_png(png, picture, params);

  const auto info = checkpoint(Modality::image, 3072, 48);
  Planner plan;
  SampleRequest r;
  r.to_file = true;
  r.image_size = 32;
  SamplePlan p = plan(r, info);
  CHECK(p.modality == Modality::image);
  CHECK(p.length == 32 * 32 * 3);
  CHECK(p.prompt.empty());
  CHECK(p.image.image_size == 32);
  CHECK(p.image.patch_size == 48);  // the model's patch

  // 8 rows are 2 rows of 8 blocks of 48 bytes: the first 768 bytes of the scan.
  r.prompt_file = png.string();
  r.prompt_rows = 8;
  p = plan(r, info);
  REQUIRE(p.prompt.size() == 768);
  CHECK(std::equal(p.prompt.begin(), p.prompt.end(), picture.begin()));
  // By default, the top half.
  r.prompt_rows = -1;
  CHECK(plan(r, info).prompt.size() == picture.size() / 2);
  CHECK(plan.warnings.empty());
}

TEST_CASE("image plan: the geometry recorded at training is the default") {
  auto info = checkpoint(Modality::image, 3072, 48);
  info.has_encoder = true;
  info.encoder.modality = Modality::image;
  info.encoder.image = {16, 12};
  Planner plan;
  SampleRequest r;
  r.to_file = true;
  SamplePlan p = plan(r, info);
  CHECK(p.image.image_size == 16);
  CHECK(p.image.patch_size == 12);
  CHECK(p.length == 16 * 16 * 3);
  r.image_size = 32;  // given: wins
  r.patch_size = 48;
  p = plan(r, info);
  CHECK(p.image.image_size == 32);
  CHECK(p.image.patch_size == 48);
}

TEST_CASE("image plan: sizes, patches and prompt rows that do not fit are refused") {
  TempDir dir("sample-plan-image-errors");
  const mb::data::ImageParams params{32, 48};
  const auto png = dir.path / "top.png";
  mb::data::write_png(png, test_picture(params), params);
  const auto info = checkpoint(Modality::image, 3072, 48);
  Planner plan;
  SampleRequest r;
  r.to_file = true;
  CHECK(contains(error_of([&] { plan(r, info); }),
                 "--image-size: is needed to sample an image model"));
  r.image_size = 64;
  CHECK(contains(
      error_of([&] { plan(r, info); }),
      "--image-size: an image of 64x64 is 12288 bytes, more than the model's context of 3072"));
  r.image_size = 32;
  r.patch_size = 50;
  CHECK(contains(error_of([&] { plan(r, info); }), "--patch-size: patch size 50 is not 3*p*p"));
  r.patch_size = 0;
  r.image_size = 30;  // the model's P = 48 is 4 x 4 pixels, which do not tile 30
  CHECK(contains(error_of([&] { plan(r, info); }),
                 "--image-size: image size 30 is not a multiple of the patch block side 4"));
  r.image_size = 32;
  r.prompt_rows = 8;
  CHECK(contains(error_of([&] { plan(r, info); }), "--prompt-rows: needs an image prompt"));
  r.prompt_file = png.string();
  r.prompt_rows = 6;
  CHECK(
      contains(error_of([&] { plan(r, info); }),
               "--prompt-rows: 6 rows cannot be kept of a 32-pixel image scanned in blocks of 4"));
  r.prompt_rows = 32;
  CHECK(contains(error_of([&] { plan(r, info); }), "32 rows cannot be kept"));
  r.prompt_rows = 8;
  r.prompt = "a cat";
  r.given.prompt = true;
  CHECK(contains(error_of([&] { plan(r, info); }),
                 "--prompt: is text; an image model takes an image prompt"));

  // A byte transformer has no patch of its own: the scan's must be given.
  auto transformer = checkpoint(Modality::image, 3072, 1);
  transformer.config.model.kind = mb::model::ModelKind::transformer;
  SampleRequest t;
  t.to_file = true;
  t.image_size = 32;
  CHECK(contains(error_of([&] { plan(t, transformer); }),
                 "--patch-size: is needed to sample an image with a byte transformer"));
  t.patch_size = 48;
  CHECK(plan(t, transformer).image.patch_size == 48);
}

TEST_CASE("audio plan: --seconds at the rate are 2 bytes a sample, capped at the context") {
  auto info = checkpoint(Modality::audio, 2049, 1);  // an odd context holds whole samples only
  Planner plan;
  SampleRequest r;
  r.to_file = true;
  r.seconds = 0.1;
  r.sample_rate = 8000;
  SamplePlan p = plan(r, info);
  CHECK(p.modality == Modality::audio);
  CHECK(p.length == 1600);
  CHECK(p.audio.sample_rate == 8000);
  CHECK(plan.warnings.empty());

  r.seconds = 1;
  p = plan(r, info);
  CHECK(p.length == 2048);
  REQUIRE(plan.warnings.size() == 1);
  CHECK(plan.warnings[0] ==
        "--seconds 1 capped at 0.128 s: the model's context is 2049 bytes, 1024 samples");

  r.seconds = 1e-5;  // rounds to no sample at all
  CHECK(contains(error_of([&] { plan(r, info); }), "--seconds: is shorter than one sample"));
  r.seconds = 0.1;
  r.prompt_seconds = 0.05;
  CHECK(contains(error_of([&] { plan(r, info); }), "--prompt-seconds: needs a sound prompt"));
  r.sample_rate = 100;
  CHECK(contains(error_of([&] { plan(r, info); }), "--sample-rate"));
}

TEST_CASE("audio plan: the recorded rate is the default, and the prompt is a sound's start") {
  TempDir dir("sample-plan-audio");
  const auto wav = dir.path / "prompt.wav";
  std::vector<std::uint8_t> pcm(8000 * 2);  // one second at 8 kHz
  for (std::size_t i = 0; i < pcm.size(); ++i)
    pcm[i] = static_cast<std::uint8_t>(i % 2 ? (i / 64) % 32 : i * 5);
  mb::data::write_wav(wav, pcm, mb::data::AudioParams{8000});

  auto info = checkpoint(Modality::audio, 2048, 8);
  info.has_encoder = true;
  info.encoder.modality = Modality::audio;
  info.encoder.audio.sample_rate = 8000;
  Planner plan;
  SampleRequest r;
  r.to_file = true;
  r.seconds = 0.1;
  r.prompt_file = wav.string();
  r.prompt_seconds = 0.025;
  SamplePlan p = plan(r, info);
  CHECK(p.audio.sample_rate == 8000);  // recorded, not the request's 16000
  CHECK(p.length == 1600);
  CHECK(p.prompt.size() == 400);  // 200 samples
  r.prompt_seconds = -1;          // by default, half of the sound
  CHECK(plan(r, info).prompt.size() == 800);
  r.prompt_seconds = 0.1;
  CHECK(
      contains(error_of([&] { plan(r, info); }),
               "--prompt-seconds: the prompt (800 samples) fills the whole sound of 800 samples"));

  // A given rate wins over the recorded one.
  r.prompt_seconds = -1;
  r.sample_rate = 4000;
  r.given.sample_rate = true;
  p = plan(r, info);
  CHECK(p.audio.sample_rate == 4000);
  CHECK(p.length == 800);
  r.prompt = "hello";
  r.given.prompt = true;
  CHECK(contains(error_of([&] { plan(r, info); }),
                 "--prompt: is text; an audio model takes a sound prompt"));
}
