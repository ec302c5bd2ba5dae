// Audio: decoded with libsndfile from any format it reads (WAV, FLAC, Ogg Vorbis, Opus,
// AIFF, ...), mixed down to mono by averaging the channels, resampled to the dataset rate
// with libsamplerate, and stored as 16-bit little-endian signed PCM (2 bytes per sample;
// at 16 kHz that is the paper's 32,000 bytes per second).
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "data/encoders/encoder.hpp"

namespace mb::data {

// File -> PCM s16le mono bytes at params.sample_rate. Throws mb::Error naming the path and
// libsndfile's reason when the file cannot be opened or decoded.
std::vector<std::uint8_t> encode_audio_file(const std::filesystem::path& path,
                                            const AudioParams& params);

// Same, from an encoded file held in memory (`name` is used in error messages).
std::vector<std::uint8_t> encode_audio_memory(std::span<const std::uint8_t> encoded,
                                              const AudioParams& params, const std::string& name);

// PCM s16le mono bytes -> a WAV file at params.sample_rate (written atomically). An odd
// trailing byte is dropped.
void write_wav(const std::filesystem::path& path, std::span<const std::uint8_t> pcm,
               const AudioParams& params);

// The audio modality's encoder (registry.hpp): the formats above as PCM; samples as WAV.
const Encoder& audio_encoder();

}  // namespace mb::data
