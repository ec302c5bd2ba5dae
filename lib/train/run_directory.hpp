// A training run's directory as a whole: whether RUNDIR may start or continue a run, and who
// may write it. `megabyte train` runs for days and is restarted by schedulers, so:
//   - one process at a time: an exclusive flock(2) on RUNDIR/train.lock, which the kernel
//     drops when the holder exits however it exits (SIGKILL, power loss ends the boot), so a
//     stale lock never blocks a resume and there is nothing to clean up by hand;
//   - a job restarted after preemption runs the same command each time, so --resume also
//     starts a run that has not started (RUNDIR absent, or killed before config.yaml);
//   - what a killed run was writing when it died (the temporary files of atomic writes,
//     checkpoints being written, replaced or pruned) is named and removed, under the lock.
// With several processes per run (MPI), only the one that writes RUNDIR calls
// open_run_directory() and keeps its lock; the others write nothing there.
#pragma once

#include <filesystem>
#include <string>

#include "model/config.hpp"

namespace mb::train {

inline constexpr const char* kRunLockFile = "train.lock";

// An exclusive lock on a run directory, held from construction to destruction.
class RunLock {
 public:
  // Creates RUNDIR/train.lock if needed and locks it without waiting: throws mb::Error at
  // once, naming the holder's pid, when another process holds it.
  explicit RunLock(const std::filesystem::path& run_dir);
  ~RunLock();
  RunLock(RunLock&& other) noexcept;
  RunLock& operator=(RunLock&& other) noexcept;
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

// Makes RUNDIR ready for `config` and returns its lock, which the caller keeps for as long
// as it writes there. Without `resume`, RUNDIR must be absent or empty (or hold only what a
// run killed before writing config.yaml leaves); it is created and config.yaml written. With
// `resume`, a RUNDIR with config.yaml must have been trained with the same config; one
// without is started as a new run, which is said on stderr. Leftovers of a killed run are
// removed either way. Throws mb::Error (what, where, what to do) when it cannot.
RunLock open_run_directory(const model::Config& config, const std::filesystem::path& run_dir,
                           bool resume);

}  // namespace mb::train
