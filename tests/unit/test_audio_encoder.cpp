#include <doctest/doctest.h>
#include <sndfile.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "data/encoders/audio.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using mb::data::AudioParams;

namespace {

using mb::test::TempDir;

struct SoundFile {
  SF_INFO info{};
  std::vector<std::int16_t> samples;  // interleaved
};

void write_s16_wav(const fs::path& path, int rate, int channels,
                   const std::vector<std::int16_t>& interleaved) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = channels;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  REQUIRE_MESSAGE(f != nullptr, sf_strerror(nullptr));
  sf_count_t frames = static_cast<sf_count_t>(interleaved.size()) / channels;
  CHECK(sf_writef_short(f, interleaved.data(), frames) == frames);
  REQUIRE(sf_close(f) == 0);
}

SoundFile read_s16(const fs::path& path) {
  SoundFile s;
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &s.info);
  REQUIRE_MESSAGE(f != nullptr, sf_strerror(nullptr));
  s.samples.resize(static_cast<std::size_t>(s.info.frames * s.info.channels));
  CHECK(sf_readf_short(f, s.samples.data(), s.info.frames) == s.info.frames);
  sf_close(f);
  return s;
}

std::int16_t tone(double freq, double amplitude, int i, int rate, double phase = 0.0) {
  return static_cast<std::int16_t>(
      std::lround(amplitude * std::sin(2 * std::numbers::pi * freq * i / rate + phase)));
}

std::vector<std::int16_t> from_s16le(const std::vector<std::uint8_t>& bytes) {
  std::vector<std::int16_t> s(bytes.size() / 2);
  for (std::size_t i = 0; i < s.size(); ++i)
    s[i] = static_cast<std::int16_t>(
        static_cast<std::uint16_t>(bytes[2 * i] | (bytes[2 * i + 1] << 8)));
  return s;
}

std::vector<std::uint8_t> to_s16le(const std::vector<std::int16_t>& samples) {
  std::vector<std::uint8_t> b;
  for (std::int16_t s : samples) {
    auto u = static_cast<std::uint16_t>(s);
    b.push_back(static_cast<std::uint8_t>(u & 0xFF));
    b.push_back(static_cast<std::uint8_t>(u >> 8));
  }
  return b;
}

int zero_crossings(const std::vector<std::int16_t>& s) {
  int n = 0;
  for (std::size_t i = 1; i < s.size(); ++i) n += (s[i - 1] < 0) != (s[i] < 0);
  return n;
}

void check_error_names(const fs::path& path) {
  try {
    mb::data::encode_audio_file(path, AudioParams{});
    FAIL("no error for " << path);
  } catch (const mb::Error& e) {
    CHECK(std::string(e.what()).find(path.string()) != std::string::npos);
    CHECK(e.where() == path.string());
    CHECK_FALSE(e.message().empty());
    CHECK_FALSE(e.hint().empty());
  }
}

fs::path first_file(const fs::path& dir, const std::string& extension) {
  std::error_code ec;
  fs::path best;
  if (!fs::is_directory(dir, ec)) return best;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().extension() == extension && (best.empty() || entry.path() < best))
      best = entry.path();
  return best;
}

}  // namespace

TEST_CASE("encode_audio_file: a stereo 16 kHz WAV becomes the channel average") {
  TempDir dir("audio-stereo");
  const int rate = 16000, frames = 16000;
  std::vector<std::int16_t> interleaved;
  for (int i = 0; i < frames; ++i) {
    interleaved.push_back(tone(440, 10000, i, rate));
    interleaved.push_back(tone(1000, 8000, i, rate, 0.3));
  }
  fs::path wav = dir.path / "stereo.wav";
  write_s16_wav(wav, rate, 2, interleaved);

  auto bytes = mb::data::encode_audio_file(wav, AudioParams{16000});
  REQUIRE(bytes.size() == static_cast<std::size_t>(frames) * 2);
  auto mono = from_s16le(bytes);
  double worst = 0;
  for (int i = 0; i < frames; ++i) {
    double average = (interleaved[2 * i] + interleaved[2 * i + 1]) / 2.0;
    worst = std::max(worst, std::abs(mono[i] - average));
  }
  CHECK(worst <= 1.0);
}

TEST_CASE(
    "encode_audio_file: a mono 16-bit WAV at the dataset rate round-trips bit-exactly through "
    "write_wav") {
  TempDir dir("audio-roundtrip");
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> any(-32768, 32767);
  std::vector<std::int16_t> samples = {-32768, 32767, 0, -1, 1, -32767};
  for (int i = 0; i < 20000; ++i) samples.push_back(static_cast<std::int16_t>(any(rng)));
  fs::path in = dir.path / "in.wav";
  write_s16_wav(in, 22050, 1, samples);

  AudioParams params{22050};
  auto bytes = mb::data::encode_audio_file(in, params);
  CHECK(bytes == to_s16le(samples));
  fs::path out = dir.path / "out.wav";
  mb::data::write_wav(out, bytes, params);
  CHECK(mb::data::encode_audio_file(out, params) == bytes);
}

TEST_CASE(
    "encode_audio_file: resampling 48 kHz to 16 kHz keeps the length and the pitch of a 440 Hz "
    "sine") {
  TempDir dir("audio-resample");
  std::vector<std::int16_t> samples;
  for (int i = 0; i < 48000; ++i) samples.push_back(tone(440, 16000, i, 48000, 0.5));
  fs::path wav = dir.path / "a440.wav";
  write_s16_wav(wav, 48000, 1, samples);

  auto mono = from_s16le(mb::data::encode_audio_file(wav, AudioParams{16000}));
  CHECK(std::abs(static_cast<int>(mono.size()) - 16000) <= 8);
  int crossings = zero_crossings(mono);
  CHECK(crossings >= 862);
  CHECK(crossings <= 898);
}

TEST_CASE("encode_audio_file: an empty WAV gives no bytes") {
  TempDir dir("audio-empty");
  fs::path wav = dir.path / "empty.wav";
  write_s16_wav(wav, 16000, 1, {});
  CHECK(mb::data::encode_audio_file(wav, AudioParams{16000}).empty());
  fs::path other_rate = dir.path / "empty-44k.wav";
  write_s16_wav(other_rate, 44100, 2, {});
  CHECK(mb::data::encode_audio_file(other_rate, AudioParams{16000}).empty());
}

TEST_CASE("encode_audio_file: real WAV and Ogg files decode to whole samples") {
  struct Source {
    fs::path dir;
    std::string extension;
  };
  const Source sources[] = {{"/usr/share/sounds/alsa", ".wav"},
                            {"/usr/share/sounds/freedesktop/stereo", ".oga"},
                            {"/usr/share/asterisk/sounds/en", ".wav"}};
  for (const Source& source : sources) {
    fs::path file = first_file(source.dir, source.extension);
    if (file.empty()) {
      MESSAGE("skipped: no " << source.extension << " file in " << source.dir);
      continue;
    }
    CAPTURE(file);
    auto bytes = mb::data::encode_audio_file(file, AudioParams{16000});
    CHECK_FALSE(bytes.empty());
    CHECK(bytes.size() % 2 == 0);
    SF_INFO info{};
    SNDFILE* f = sf_open(file.c_str(), SFM_READ, &info);
    REQUIRE(f != nullptr);
    sf_close(f);
    double expected = static_cast<double>(info.frames) * 16000 / info.samplerate;
    CHECK(std::abs(static_cast<double>(bytes.size() / 2) - expected) <= 8);
  }
}

TEST_CASE("encode_audio_file: unreadable input is an mb::Error naming the path") {
  TempDir dir("audio-bad");
  fs::path noise = dir.path / "noise.wav";
  {
    std::mt19937 rng(9);
    std::ofstream out(noise, std::ios::binary);
    for (int i = 0; i < 4096; ++i) out.put(static_cast<char>(rng() & 0xFF));
  }
  check_error_names(noise);
  fs::path text = dir.path / "notes.wav";
  std::ofstream(text) << "not a sound\n";
  check_error_names(text);
  check_error_names(dir.path / "missing.wav");
}

TEST_CASE("audio params: an out-of-range sample rate is refused") {
  TempDir dir("audio-params");
  fs::path wav = dir.path / "a.wav";
  write_s16_wav(wav, 16000, 1, {1, 2, 3});
  CHECK_THROWS_AS(mb::data::encode_audio_file(wav, AudioParams{10}), mb::Error);
  CHECK_THROWS_AS(
      mb::data::write_wav(dir.path / "b.wav", std::vector<std::uint8_t>(4), AudioParams{10}),
      mb::Error);
  CHECK_FALSE(fs::exists(dir.path / "b.wav"));
}

TEST_CASE("write_wav: libsndfile reads back the rate, one channel and the samples") {
  TempDir dir("audio-write");
  std::vector<std::int16_t> samples;
  for (int i = 0; i < 12345; ++i) samples.push_back(tone(300, 20000, i, 8000));
  auto pcm = to_s16le(samples);
  pcm.push_back(0x7F);  // an odd trailing byte is not a sample and must be dropped
  fs::path out = dir.path / "out.wav";
  mb::data::write_wav(out, pcm, AudioParams{8000});

  SoundFile back = read_s16(out);
  CHECK(back.info.samplerate == 8000);
  CHECK(back.info.channels == 1);
  CHECK((back.info.format & SF_FORMAT_TYPEMASK) == SF_FORMAT_WAV);
  CHECK((back.info.format & SF_FORMAT_SUBMASK) == SF_FORMAT_PCM_16);
  CHECK(back.samples == samples);
  // Only the finished file is left: no temporary beside it.
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator{}) == 1);
}
