#include "core/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "core/error.hpp"

namespace mb {

namespace fs = std::filesystem;

namespace {

std::string temp_name_for(const fs::path& target, const char* tag) {
  std::string name = ".";
  name.append(target.filename().string())
      .append(".")
      .append(tag)
      .append("-")
      .append(std::to_string(::getpid()));
  return name;
}

[[noreturn]] void fail_write(const fs::path& path, int err) {
  std::string hint;
  if (err == ENOSPC || err == EFBIG || err == EDQUOT)
    hint = "free some space or write somewhere else; nothing was left half-written";
  throw Error(path.string(), "cannot write: " + errno_text(err), hint);
}

}  // namespace

void fsync_directory(const fs::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw Error(dir.string(), "cannot open directory: " + errno_text(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  // Some file systems (tmpfs on old kernels) refuse fsync on directories; that is harmless.
  if (rc != 0 && err != EINVAL)
    throw Error(dir.string(), "cannot fsync directory: " + errno_text(err));
}

AtomicFile::AtomicFile(fs::path target) : target_(std::move(target)) {
  temp_ = target_.parent_path() / temp_name_for(target_, "tmp");
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(target_.string(), "cannot create: " + errno_text(errno));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_.c_str());
}

void AtomicFile::write(std::span<const std::uint8_t> bytes) {
  const std::uint8_t* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_write(target_, errno);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
    written_ += static_cast<std::uint64_t>(n);
  }
}

void AtomicFile::write(std::string_view text) {
  write(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(text.data()),
                                      text.size()));
}

void AtomicFile::commit() {
  if (::fsync(fd_) != 0) fail_write(target_, errno);
  if (::close(fd_) != 0) {
    fd_ = -1;
    fail_write(target_, errno);
  }
  fd_ = -1;
  if (::rename(temp_.c_str(), target_.c_str()) != 0)
    throw Error(target_.string(), "cannot rename into place: " + errno_text(errno));
  committed_ = true;
  fsync_directory(target_.parent_path());
}

AtomicDirectory::AtomicDirectory(fs::path target) : target_(std::move(target)) {
  while (target_.has_parent_path() && target_.filename().empty()) target_ = target_.parent_path();
  std::error_code ec;
  if (fs::exists(fs::symlink_status(target_, ec)))
    throw Error(target_.string(), "already exists",
                "choose another output directory or remove this one first");
  temp_ = target_.parent_path() / temp_name_for(target_, "partial");
  fs::remove_all(temp_, ec);
  if (!fs::create_directory(temp_, ec) || ec)
    throw Error(target_.string(), "cannot create: " + ec.message(),
                "check that the parent directory exists and is writable");
}

AtomicDirectory::~AtomicDirectory() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(temp_, ec);
  }
}

void AtomicDirectory::commit() {
  fsync_directory(temp_);
  // rename(2) of a directory onto an existing non-empty directory fails, and onto an empty
  // one replaces it; refuse both so that nothing of the user's is ever replaced.
  std::error_code ec;
  if (fs::exists(fs::symlink_status(target_, ec)))
    throw Error(target_.string(), "appeared while writing; refusing to replace it");
  if (::rename(temp_.c_str(), target_.c_str()) != 0)
    throw Error(target_.string(), "cannot rename into place: " + errno_text(errno));
  committed_ = true;
  fsync_directory(target_.parent_path());
}

void write_file_atomic(const fs::path& target, std::string_view content) {
  AtomicFile f(target);
  f.write(content);
  f.commit();
}

}  // namespace mb
