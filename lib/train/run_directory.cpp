#include "train/run_directory.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <map>
#include <string>
#include <system_error>
#include <vector>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "model/checkpoint.hpp"
#include "train/run_dataset.hpp"

namespace mb::train {

namespace fs = std::filesystem;
using model::Config;

namespace {

constexpr const char* kConfigFile = "config.yaml";
constexpr const char* kMetricsFile = "metrics.jsonl";

// Every scalar of a YAML document by its dotted key ("train.optimizer.lr" -> "2.0e-04").
void flatten(const YAML::Node& node, const std::string& prefix,
             std::map<std::string, std::string>& out) {
  if (node.IsMap()) {
    for (const auto& kv : node)
      flatten(
          kv.second,
          prefix.empty() ? kv.first.as<std::string>() : prefix + "." + kv.first.as<std::string>(),
          out);
  } else {
    out[prefix] = YAML::Dump(node);
  }
}

// The keys on which two resolved configs differ, as "KEY: a -> b" (run's value, then the new).
std::string config_differences(const Config& saved, const Config& given) {
  std::map<std::string, std::string> a, b;
  flatten(YAML::Load(model::config_to_yaml(saved)), "", a);
  flatten(YAML::Load(model::config_to_yaml(given)), "", b);
  std::string out;
  for (const auto& [key, value] : a) {
    auto it = b.find(key);
    const std::string now = it == b.end() ? "(absent)" : it->second;
    if (now != value) out += (out.empty() ? "" : ", ") + key + ": " + value + " -> " + now;
  }
  for (const auto& [key, value] : b)
    if (!a.count(key)) out += (out.empty() ? "" : ", ") + key + ": (absent) -> " + value;
  return out;
}

// Whether `name` is the temporary of an atomic write (core/atomic_file.hpp: ".NAME.tmp-PID")
// of the run file `file`, which a process killed mid-write leaves behind.
bool is_temporary_of(const std::string& name, const std::string& file) {
  const std::string prefix = "." + file + ".tmp-";
  return name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0 &&
         name.find_first_not_of("0123456789", prefix.size()) == std::string::npos;
}

// Whether RUNDIR holds nothing but what a run killed before it wrote config.yaml leaves: its
// lock file and the temporary of config.yaml. Such a run has not started.
bool holds_no_run(const fs::path& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name != kRunLockFile && !is_temporary_of(name, kConfigFile)) return false;
  }
  return !ec;
}

// Removes what runs killed while writing RUNDIR left (the temporaries of its files, the
// checkpoints being written, replaced or pruned), naming it.
void remove_leftovers(const fs::path& dir) {
  std::vector<fs::path> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    for (const char* file : {kConfigFile, kMetricsFile, kRunDatasetFile})
      if (is_temporary_of(name, file)) found.push_back(entry.path());
  }
  std::string done;
  for (const fs::path& p : found) {
    fs::remove(p, ec);
    done += (done.empty() ? "removed " : ", removed ") + p.string();
  }
  for (const std::string& line : model::recover_checkpoints(dir))
    done += (done.empty() ? "" : ", ") + line;
  if (!done.empty()) log_info("what an interrupted run was writing: " + done);
}

}  // namespace

RunLock::RunLock(const fs::path& run_dir) {
  const fs::path path = run_dir / kRunLockFile;
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw Error(path.string(), "cannot open the run's lock file: " + errno_text(errno),
                "check that the run directory is writable");
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char buf[32] = {};
    const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    ::close(fd_);
    fd_ = -1;
    if (err != EWOULDBLOCK)
      throw Error(path.string(), "cannot lock: " + errno_text(err),
                  "put the run directory on a file system with flock(2)");
    std::string holder = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    throw Error(run_dir.string(),
                "is in use by another megabyte train" +
                    (holder.empty() ? std::string() : " (pid " + holder + ")"),
                "wait for it to finish or stop it; one run directory takes one process");
  }
  // The holder's pid, for the message above: informative only, the flock is the lock.
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
    // (A lock whose pid could not be written still locks.)
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

RunLock::RunLock(RunLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

RunLock& RunLock::operator=(RunLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

RunLock open_run_directory(const Config& config, const fs::path& dir, bool resume) {
  const fs::path config_file = dir / kConfigFile;
  std::error_code ec;
  const bool exists = fs::exists(dir, ec);
  if (exists && !fs::is_directory(dir, ec))
    throw Error(dir.string(), "is not a directory", "give a new directory with -o");
  const bool started = fs::exists(config_file, ec);
  if (!started && exists && !holds_no_run(dir))
    throw Error(dir.string(), "exists and is not empty",
                resume ? "it holds no config.yaml, so it is not a run directory; name the run's "
                         "directory, or a new or empty one, with -o"
                       : "give a new or empty directory with -o");
  if (started && !resume)
    throw Error(dir.string(), "holds another run (config.yaml, checkpoints)",
                "continue it with --resume, or give a new directory with -o");

  fs::create_directories(dir, ec);
  if (ec)
    throw Error(dir.string(), "cannot create the run directory: " + ec.message(),
                "check that its parent is writable");
  RunLock lock(dir);
  // Another process may have started the run between the checks above and the lock.
  if (!started && fs::exists(config_file, ec))
    throw Error(dir.string(), "a run was started there meanwhile",
                "continue it with --resume, or give a new directory with -o");
  remove_leftovers(dir);
  if (!started) {
    if (resume)
      log_info(dir.string() + ": no run to resume there yet (no config.yaml): starting it");
    write_file_atomic(config_file, model::config_to_yaml(config));
    return lock;
  }
  const Config saved = model::load_config(config_file.string());
  if (!(saved == config))
    throw Error(dir.string(),
                "was trained with another config (" + config_differences(saved, config) + ")",
                "resume with the run's own config (" + config_file.string() +
                    "), or start a new run in a new directory");
  return lock;
}

}  // namespace mb::train
