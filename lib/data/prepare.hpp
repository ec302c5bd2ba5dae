// `megabyte prepare` as a library call: encode every input file with its modality's
// encoder (in parallel), append the results in input order to a new dataset, and publish
// it atomically. The same inputs and options give a byte-identical dataset.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "data/dataset_writer.hpp"
#include "data/encoders/modality.hpp"
#include "data/input_files.hpp"
#include "data/manifest.hpp"

namespace mb::data {

struct PrepareOptions {
  EncoderParams encoder;
  double val_fraction = 0.05;
  std::vector<std::string> val_files;  // when given, exactly these files form the validation split
  DatasetWriterOptions writer;
  unsigned threads = 0;  // 0: all hardware threads
  bool skip_bad = false;
};

struct SkippedFile {
  std::string path, reason;
};

struct PrepareReport {
  Manifest manifest;
  std::vector<SkippedFile> skipped;
  std::uint64_t input_files = 0;
  double seconds = 0;
};

// Called after each file with (files done, content bytes done).
using PrepareProgress = std::function<void(std::uint64_t, std::uint64_t)>;

// `cancel` (may be null) is polled between files; when set, prepare stops with an error
// and leaves nothing behind.
PrepareReport prepare_dataset(const std::filesystem::path& out_dir,
                              const std::vector<InputFile>& files, const PrepareOptions& options,
                              const PrepareProgress& progress, const std::atomic<bool>* cancel);

}  // namespace mb::data
