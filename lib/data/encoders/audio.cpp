#include "data/encoders/audio.hpp"

#include <samplerate.h>
#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/yaml_util.hpp"
#include "data/manifest_values.hpp"

namespace mb::data {

namespace {

constexpr const char* kReadHint =
    "is it an audio file libsndfile can read (WAV, FLAC, Ogg, Opus, AIFF)?";
constexpr sf_count_t kChunkFrames = 4096;
// libsndfile reads 16-bit PCM as s / 32768, so scaling back by 32768 (a power of two) makes
// a 16-bit file at the dataset rate come out bit-identical.
constexpr double kFullScale = 32768.0;

struct SndFileClose {
  void operator()(SNDFILE* file) const { sf_close(file); }
};
using SndFile = std::unique_ptr<SNDFILE, SndFileClose>;

struct SrcStateDelete {
  void operator()(SRC_STATE* state) const { src_delete(state); }
};
using SrcState = std::unique_ptr<SRC_STATE, SrcStateDelete>;

std::int16_t to_s16(float sample) {
  double v = static_cast<double>(sample) * kFullScale;
  if (std::isnan(v)) return 0;
  return static_cast<std::int16_t>(std::lround(std::clamp(v, -32768.0, 32767.0)));
}

// Appends samples as s16le whatever the host's byte order.
void append_s16le(std::vector<std::uint8_t>& out, std::span<const float> samples) {
  for (float s : samples) {
    auto u = static_cast<std::uint16_t>(to_s16(s));
    out.push_back(static_cast<std::uint8_t>(u & 0xFF));
    out.push_back(static_cast<std::uint8_t>(u >> 8));
  }
}

SndFile open_for_reading(const std::filesystem::path& path, SF_INFO& info) {
  info = SF_INFO{};
  SndFile file(sf_open(path.c_str(), SFM_READ, &info));
  if (!file) {
    std::error_code ec;
    bool missing = !std::filesystem::exists(path, ec);
    throw Error(path.string(), sf_strerror(nullptr), missing ? "check the path" : kReadHint);
  }
  return file;
}

// Mixes interleaved frames down to mono in place and returns the mono samples.
std::span<float> mix_to_mono(std::vector<float>& interleaved, sf_count_t frames, int channels) {
  if (channels == 1) return {interleaved.data(), static_cast<std::size_t>(frames)};
  const auto n = static_cast<std::size_t>(channels);
  for (std::size_t f = 0; f < static_cast<std::size_t>(frames); ++f) {
    float sum = 0.0f;
    for (std::size_t c = 0; c < n; ++c) sum += interleaved[f * n + c];
    interleaved[f] = sum / static_cast<float>(channels);
  }
  return {interleaved.data(), static_cast<std::size_t>(frames)};
}

// Streams mono audio through libsamplerate, so that a long recording never has to be held
// as floats at its original rate.
class Resampler {
 public:
  Resampler(int from_rate, int to_rate, const std::string& where)
      : ratio_(static_cast<double>(to_rate) / from_rate),
        out_(static_cast<std::size_t>(kChunkFrames)) {
    if (!src_is_valid_ratio(ratio_))
      throw Error(where,
                  "cannot resample from " + std::to_string(from_rate) + " Hz to " +
                      std::to_string(to_rate) + " Hz",
                  "libsamplerate converts by factors up to 256; pick a closer dataset sample rate");
    int err = 0;
    state_.reset(src_new(SRC_SINC_MEDIUM_QUALITY, 1, &err));
    if (!state_)
      throw Error(where, std::string("cannot start the resampler: ") + src_strerror(err));
  }

  // With `last` set the resampler is also drained of the samples it still holds.
  void feed(std::span<const float> in, bool last, std::vector<std::uint8_t>& pcm,
            const std::string& where) {
    // Older libsamplerate rejects a null input pointer even with zero frames.
    static constexpr float kNoInput = 0.0f;
    SRC_DATA d{};
    d.data_in = in.empty() ? &kNoInput : in.data();
    d.input_frames = static_cast<long>(in.size());
    d.src_ratio = ratio_;
    d.end_of_input = last ? 1 : 0;
    for (;;) {
      d.data_out = out_.data();
      d.output_frames = static_cast<long>(out_.size());
      if (int err = src_process(state_.get(), &d))
        throw Error(where, std::string("resampling failed: ") + src_strerror(err));
      append_s16le(pcm, {out_.data(), static_cast<std::size_t>(d.output_frames_gen)});
      d.data_in += d.input_frames_used;
      d.input_frames -= d.input_frames_used;
      bool stalled = d.input_frames_used == 0 && d.output_frames_gen == 0;
      if (stalled || (d.input_frames == 0 && !last)) break;
    }
  }

 private:
  double ratio_;
  SrcState state_;
  std::vector<float> out_;
};

// libsndfile's virtual I/O over a growable memory buffer, so write_wav can hand the whole
// finished file to AtomicFile.
struct MemoryFile {
  std::vector<std::uint8_t> bytes;
  sf_count_t pos = 0;

  static MemoryFile& of(void* user) { return *static_cast<MemoryFile*>(user); }
  static sf_count_t length(void* user) { return static_cast<sf_count_t>(of(user).bytes.size()); }
  static sf_count_t tell(void* user) { return of(user).pos; }

  static sf_count_t seek(sf_count_t offset, int whence, void* user) {
    MemoryFile& m = of(user);
    sf_count_t base = whence == SEEK_CUR ? m.pos : whence == SEEK_END ? length(user) : 0;
    if (base + offset < 0) return -1;
    m.pos = base + offset;
    return m.pos;
  }

  static sf_count_t read(void* ptr, sf_count_t count, void* user) {
    MemoryFile& m = of(user);
    sf_count_t n = std::clamp<sf_count_t>(length(user) - m.pos, 0, count);
    if (n > 0) std::memcpy(ptr, m.bytes.data() + m.pos, static_cast<std::size_t>(n));
    m.pos += n;
    return n;
  }

  static sf_count_t write(const void* ptr, sf_count_t count, void* user) {
    MemoryFile& m = of(user);
    auto end = static_cast<std::size_t>(m.pos + count);
    if (end > m.bytes.size()) m.bytes.resize(end);
    std::memcpy(m.bytes.data() + m.pos, ptr, static_cast<std::size_t>(count));
    m.pos += count;
    return count;
  }

  static SF_VIRTUAL_IO io() { return SF_VIRTUAL_IO{length, seek, read, write, tell}; }
};

std::vector<std::int16_t> decode_s16le(std::span<const std::uint8_t> pcm) {
  std::vector<std::int16_t> samples(pcm.size() / 2);
  for (std::size_t i = 0; i < samples.size(); ++i)
    samples[i] =
        static_cast<std::int16_t>(static_cast<std::uint16_t>(pcm[2 * i] | (pcm[2 * i + 1] << 8)));
  return samples;
}

std::vector<std::uint8_t> wav_in_memory(const std::vector<std::int16_t>& samples,
                                        const AudioParams& params, const std::string& where) {
  MemoryFile mem;
  SF_VIRTUAL_IO io = MemoryFile::io();
  SF_INFO info{};
  info.samplerate = params.sample_rate;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SndFile file(sf_open_virtual(&io, SFM_WRITE, &info, &mem));
  if (!file) throw Error(where, std::string("cannot create the WAV: ") + sf_strerror(nullptr));
  auto frames = static_cast<sf_count_t>(samples.size());
  if (sf_writef_short(file.get(), samples.data(), frames) != frames)
    throw Error(where, std::string("cannot write the WAV: ") + sf_strerror(file.get()));
  // The header's sizes are filled in on close, so the bytes are complete only after it.
  if (int err = sf_close(file.release()))
    throw Error(where, std::string("cannot finish the WAV: ") + sf_error_number(err));
  return std::move(mem.bytes);
}

}  // namespace

namespace {

// Decodes an open file: mixed to mono, resampled to the dataset rate, as s16le PCM.
std::vector<std::uint8_t> encode_open_file(SNDFILE* file, const SF_INFO& info,
                                           const AudioParams& params, const std::string& where) {
  std::unique_ptr<Resampler> resampler;
  if (info.samplerate != params.sample_rate)
    resampler = std::make_unique<Resampler>(info.samplerate, params.sample_rate, where);

  std::vector<std::uint8_t> pcm;
  if (info.frames > 0 && !resampler) pcm.reserve(static_cast<std::size_t>(info.frames) * 2);
  std::vector<float> chunk(static_cast<std::size_t>(kChunkFrames) *
                           static_cast<std::size_t>(info.channels));
  for (;;) {
    sf_count_t got = sf_readf_float(file, chunk.data(), kChunkFrames);
    if (got <= 0) break;
    std::span<float> mono = mix_to_mono(chunk, got, info.channels);
    if (resampler)
      resampler->feed(mono, false, pcm, where);
    else
      append_s16le(pcm, mono);
  }
  if (sf_error(file) != SF_ERR_NO_ERROR)
    throw Error(where, std::string("cannot decode audio: ") + sf_strerror(file), kReadHint);
  if (resampler) resampler->feed({}, true, pcm, where);
  return pcm;
}

}  // namespace

std::vector<std::uint8_t> encode_audio_file(const std::filesystem::path& path,
                                            const AudioParams& params) {
  const std::string where = path.string();
  params.validate(where);
  SF_INFO info{};
  SndFile file = open_for_reading(path, info);
  return encode_open_file(file.get(), info, params, where);
}

std::vector<std::uint8_t> encode_audio_memory(std::span<const std::uint8_t> encoded,
                                              const AudioParams& params, const std::string& name) {
  params.validate(name);
  MemoryFile mem;
  mem.bytes.assign(encoded.begin(), encoded.end());
  SF_VIRTUAL_IO io = MemoryFile::io();
  SF_INFO info{};
  SndFile file(sf_open_virtual(&io, SFM_READ, &info, &mem));
  if (!file) throw Error(name, sf_strerror(nullptr), kReadHint);
  return encode_open_file(file.get(), info, params, name);
}

void write_wav(const std::filesystem::path& path, std::span<const std::uint8_t> pcm,
               const AudioParams& params) {
  const std::string where = path.string();
  params.validate(where);
  std::vector<std::uint8_t> wav = wav_in_memory(decode_s16le(pcm), params, where);
  AtomicFile file(path);
  file.write(wav);
  file.commit();
}

namespace {

// The extensions of the formats libsndfile reads (MP3 since 1.1).
constexpr std::string_view kExtensions[] = {".wav",  ".flac", ".ogg", ".oga", ".opus",
                                            ".aiff", ".aif",  ".au",  ".snd", ".caf",
                                            ".w64",  ".mp3",  ".rf64"};
constexpr int kChannels = 1;

class AudioEncoder final : public Encoder {
 public:
  Modality modality() const override { return Modality::audio; }
  std::string_view name() const override { return "audio"; }

  void check_options(const EncoderParams& p) const override { p.audio.validate("--sample-rate"); }
  std::vector<EncoderField> fields(const EncoderParams& p) const override {
    return {{"layout", "pcm"},
            {"sample_rate", p.audio.sample_rate},
            {"encoding", std::string(AudioParams::encoding)},
            {"channels", kChannels}};
  }
  void parse_fields(const YamlMap& map, EncoderParams& p) const override {
    map.allow_only({"layout", "sample_rate", "encoding", "channels"});
    require_value(map, "layout", "pcm");
    require_value(map, "encoding", std::string(AudioParams::encoding));
    require_value(map, "channels", std::to_string(kChannels));
    p.audio.sample_rate = bounded_int(map, "sample_rate", 384000);
    p.audio.validate(map.where("sample_rate"));
  }
  std::string describe(const EncoderParams& p) const override {
    const int rate = p.audio.sample_rate;
    return "audio (mono, " + std::to_string(rate) + " Hz, " + std::string(AudioParams::encoding) +
           ", " + std::to_string(AudioParams::bytes_per_sample * rate) + " bytes/s)";
  }
  std::vector<RecordedParam> recorded_params(EncoderParams& p) const override {
    return {{"data.sample_rate", &p.audio.sample_rate}};
  }

  std::span<const std::string_view> file_extensions() const override { return kExtensions; }
  std::vector<std::uint8_t> encode_file(const std::filesystem::path& path,
                                        const EncoderParams& p) const override {
    return encode_audio_file(path, p.audio);
  }
  void write_file(const std::filesystem::path& path, std::span<const std::uint8_t> bytes,
                  const EncoderParams& p) const override {
    write_wav(path, bytes, p.audio);
  }
  std::string_view output_extension() const override { return ".wav"; }

  bool is_text() const override { return false; }
  int layout_patch_size(const EncoderParams&) const override { return 0; }
  bool scores_bits_per_dim() const override { return false; }
};

}  // namespace

const Encoder& audio_encoder() {
  static const AudioEncoder encoder;
  return encoder;
}

}  // namespace mb::data
