// A small, strict reader and writer of safetensors files
// (https://github.com/huggingface/safetensors), the format of our checkpoints, so that any
// safetensors reader (the Python package, PyTorch) can load the weights.
//
// Layout: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON
//   {"__metadata__": {"key": "value", ...},
//    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
// padded with trailing spaces, then the data buffer: the tensors, row-major and
// little-endian, back to back, covering the buffer exactly. Offsets are relative to the
// start of the buffer.
//
// What we write: F32 tensors in the order given (a checkpoint wants a stable order, and the
// header lists them in that order too), the header padded so that the buffer starts at a
// multiple of 8 bytes, and the metadata key "megabyte.data_xxh64" (16 hex digits: XXH64 of
// the whole data buffer), so that a reader detects a corrupt file instead of loading
// damaged weights. Files are written atomically (temporary name, fsync, rename).
//
// What we read: any well-formed safetensors file; every inconsistency (a truncated file, a
// bad header, offsets that overlap or leave gaps, a checksum mismatch) is an mb::Error that
// names the file. The reader keeps only the header in memory; tensors are read on demand.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace mb {
class ReadOnlyFile;
}

namespace mb::model {

// The metadata key that holds the data checksum; the writer sets it (replacing any value
// the caller passed) and the reader verifies it where present.
inline constexpr const char* kDataChecksumKey = "megabyte.data_xxh64";

// One tensor to write: `data` points at product(shape) floats (a scalar has shape {}; a
// tensor with a zero dimension has no data, and `data` may then be null).
struct TensorRef {
  std::string name;
  std::vector<std::int64_t> shape;
  const float* data = nullptr;
};

// Writes `tensors` (in this order) and `metadata` to `path` atomically: the final name
// appears only once the whole file is on disk. `path` may lie inside an AtomicDirectory's
// staging() directory, so that several files appear together when the caller commits it.
// Names must be unique, non-empty and not "__metadata__"; dimensions must be >= 0.
void write_safetensors(const std::filesystem::path& path, const std::vector<TensorRef>& tensors,
                       const std::map<std::string, std::string>& metadata);

class SafetensorsFile {
 public:
  struct Entry {
    std::string name;
    std::string dtype;                 // as in the file: "F32", "BF16", "I64", ...
    std::vector<std::int64_t> shape;   // {} for a scalar
    std::uint64_t begin = 0, end = 0;  // byte range in the data buffer
  };

  enum class Checksum { verify, skip };

  // Reads and validates the header. With Checksum::verify (the default) and a
  // "megabyte.data_xxh64" key in the metadata, also reads the whole data buffer once to
  // check it; Checksum::skip is for describing a file quickly (`megabyte info`).
  static SafetensorsFile open(const std::filesystem::path& path,
                              Checksum checksum = Checksum::verify);

  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
  ~SafetensorsFile();

  const std::filesystem::path& path() const { return path_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // In file order: by position in the data buffer (for files we wrote: the order given to
  // write_safetensors).
  const std::vector<Entry>& tensors() const { return entries_; }
  bool has(const std::string& name) const { return index_.count(name) != 0; }
  const Entry* find(const std::string& name) const;  // nullptr if absent

  // Throws unless tensor `name` exists, is F32 and has exactly `expected_shape`; reads no
  // data.
  void check_f32(const std::string& name, std::span<const std::int64_t> expected_shape) const;

  // Copies tensor `name` into dst (room for product(expected_shape) floats), after the
  // checks of check_f32.
  void read_f32(const std::string& name, std::span<const std::int64_t> expected_shape,
                float* dst) const;

 private:
  SafetensorsFile() = default;

  std::filesystem::path path_;
  std::unique_ptr<ReadOnlyFile> file_;
  std::uint64_t data_start_ = 0;  // absolute file offset of the data buffer: 8 + N
  std::map<std::string, std::string> metadata_;
  std::vector<Entry> entries_;
  std::unordered_map<std::string, std::size_t> index_;  // name -> position in entries_
};

}  // namespace mb::model
