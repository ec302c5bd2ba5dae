// Files and directories that must never be seen half-written. The content goes to a
// temporary name beside the target; commit() fsyncs it, renames it to the final name and
// fsyncs the directory. If commit() is never reached (an error, an exception, a full disk)
// the destructor removes the temporary, so the final name only ever holds complete data.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "core/error.hpp"

namespace mb {

class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path target);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(std::span<const std::uint8_t> bytes);
  void write(std::string_view text);
  std::uint64_t bytes_written() const { return written_; }
  void commit();

  const std::filesystem::path& target() const { return target_; }

 private:
  std::filesystem::path target_, temp_;
  int fd_ = -1;
  std::uint64_t written_ = 0;
  bool committed_ = false;
};

// A directory built under a temporary name and renamed into place in one step, so that a
// dataset is either complete or absent. The target must not exist. The staging directories
// of the same target that processes killed outright left behind are removed (and named on
// stderr) when the next one is made.
class AtomicDirectory {
 public:
  explicit AtomicDirectory(std::filesystem::path target);
  ~AtomicDirectory();
  AtomicDirectory(const AtomicDirectory&) = delete;
  AtomicDirectory& operator=(const AtomicDirectory&) = delete;

  // Where to write the content until commit().
  const std::filesystem::path& staging() const { return temp_; }
  const std::filesystem::path& target() const { return target_; }
  void commit();
  // `e` naming the target where it names the staging directory: messages name what the user
  // asked for, not a hidden temporary that will never appear.
  Error public_error(const Error& e) const;

 private:
  std::filesystem::path target_, temp_;
  bool committed_ = false;
};

// fsync a directory so that a rename inside it is durable.
void fsync_directory(const std::filesystem::path& dir);

// Write a whole file atomically in one call.
void write_file_atomic(const std::filesystem::path& target, std::string_view content);

}  // namespace mb
