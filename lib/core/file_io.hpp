// Small, checked wrappers over POSIX file reading. Every failure is an mb::Error that
// names the file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

namespace mb {

std::vector<std::uint8_t> read_whole_file(const std::filesystem::path& path);

// A read-only file handle with positional reads (pread), safe to share between threads.
class ReadOnlyFile {
 public:
  explicit ReadOnlyFile(const std::filesystem::path& path);
  ~ReadOnlyFile();
  ReadOnlyFile(ReadOnlyFile&& other) noexcept;
  ReadOnlyFile& operator=(ReadOnlyFile&&) = delete;
  ReadOnlyFile(const ReadOnlyFile&) = delete;
  ReadOnlyFile& operator=(const ReadOnlyFile&) = delete;

  std::uint64_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }
  // Reads exactly out.size() bytes at `offset`; throws (naming the file and offset) on a
  // short read.
  void read_at(std::uint64_t offset, std::span<std::uint8_t> out) const;

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

}  // namespace mb
