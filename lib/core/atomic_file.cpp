#include "core/atomic_file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/log.hpp"

namespace mb {

namespace fs = std::filesystem;

namespace {

// ".NAME.TAG-": what the temporaries of `target` are named, before the writer's pid.
std::string temp_prefix(const fs::path& target, const char* tag) {
  std::string name = ".";
  name.append(target.filename().string()).append(".").append(tag).append("-");
  return name;
}

std::string temp_name_for(const fs::path& target, const char* tag) {
  return temp_prefix(target, tag) + std::to_string(::getpid());
}

[[noreturn]] void fail_write(const fs::path& path, int err) {
  std::string hint;
  if (err == ENOSPC || err == EFBIG || err == EDQUOT)
    hint = "free some space or write somewhere else; nothing was left half-written";
  throw Error(path.string(), "cannot write: " + errno_text(err), hint);
}

// Removes the staging directories of `target` (".NAME.partial-PID") whose process no longer
// runs, naming each: one killed outright (SIGKILL, a crash, a power cut) had no chance to
// remove its own, and nothing else would. A live process's is left alone: another writer of
// the same target, which its commit will then refuse. (The pid is this machine's: a staging
// directory on a shared file system written by another machine's process may be taken for a
// dead one's.)
void remove_stale_staging(const fs::path& target) {
  const std::string prefix = temp_prefix(target, "partial");
  const fs::path parent = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  std::vector<std::pair<fs::path, pid_t>> stale;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(parent, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() <= prefix.size() || name.size() > prefix.size() + 9 ||
        name.compare(0, prefix.size(), prefix) != 0 ||
        name.find_first_not_of("0123456789", prefix.size()) != std::string::npos)
      continue;
    const auto pid = static_cast<pid_t>(std::stol(name.substr(prefix.size())));
    if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno == EPERM) continue;
    stale.emplace_back(entry.path(), pid);
  }
  for (const auto& [path, pid] : stale) {
    // Named first: a process killed while removing it leaves it to the next, which names it.
    log_info("removing " + path.string() + ", left unfinished by process " + std::to_string(pid) +
             ", which no longer runs");
    fs::remove_all(path, ec);
    if (ec)
      throw Error(path.string(), "cannot remove what an interrupted run left: " + ec.message(),
                  "remove it by hand");
  }
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
  remove_stale_staging(target_);
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

Error AtomicDirectory::public_error(const Error& e) const {
  std::string where = e.where();
  const std::string staging = temp_.string();
  if (where.rfind(staging, 0) == 0) where = target_.string() + where.substr(staging.size());
  return Error(where, e.message(), e.hint());
}

void write_file_atomic(const fs::path& target, std::string_view content) {
  AtomicFile f(target);
  f.write(content);
  f.commit();
}

}  // namespace mb
