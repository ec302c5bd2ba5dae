// The processes of one job (DESIGN.md, decision 9): started by a launcher users already have
// (`mpirun`, `srun`), joined through MPI. A process that no launcher started is a job of one,
// and then nothing here touches MPI at all, so a plain `megabyte train` is exactly the
// single-process program.
//
// This is the host side: who am I, how many are we, and the small collectives the training
// loop needs on host values (sums of losses and counts, the config every rank must agree on,
// the optimizer state gathered for a checkpoint). Large reductions of device buffers (the
// gradients) go through dist/collectives.hpp, which uses NCCL between GPUs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "dist/shard.hpp"

namespace mb::dist {

// The processes a launcher says it started (OMPI_COMM_WORLD_SIZE, PMIX/PMI, Slurm's srun),
// read from the environment before MPI is touched; 1 without a launcher.
int launched_processes();
// This process's rank as the launcher says (0 without a launcher): which one speaks before
// the job is joined.
int launched_rank();

// Whether this program was built with MPI (meson -Dmpi).
bool built_with_mpi();

// An error that every rank of the job raises alike (each ran the same check on the same
// agreed values): one rank (0) reports it and every rank ends normally with a failure status.
// Any other error on one rank ends the whole job at once (abort()), since the others would
// otherwise wait for it forever in the next collective.
class AgreedError : public Error {
 public:
  using Error::Error;
};

class Job {
 public:
  // The job this process belongs to: joins it (MPI_Init) on first use when a launcher started
  // several processes. Throws mb::Error when it cannot (no MPI in this build).
  static Job& get();

  int rank() const { return rank_; }
  int size() const { return size_; }
  // This process's index among the job's processes on its machine (which GPU it takes).
  int local_rank() const { return local_rank_; }
  bool is_root() const { return rank_ == 0; }
  bool single() const { return size_ == 1; }
  // "rank 1 of 4" (for messages), empty in a job of one.
  std::string who() const;

  // values[i] = the sum over ranks of values[i], on every rank.
  void sum(double* values, std::size_t n);
  void sum(std::int64_t* values, std::size_t n);
  // Whether `flag` is true on any rank, on every rank.
  bool any(bool flag);
  // Rank 0's `text`, on every rank.
  void broadcast(std::string& text);
  // Host vector `shard` (this rank's part of `sharding`, on every rank) gathered into `whole`
  // (sharding.total() values) on rank 0; `whole` is untouched elsewhere.
  void gather_to_root(const float* shard, float* whole, const Sharding& sharding);
  // Runs `check` on this rank. Where it throws mb::Error on any rank, every rank throws
  // AgreedError: the lowest failing rank's error, its rank named, which rank 0 reports. The way
  // for a check that may fail on some ranks only (a directory one rank cannot write, a config
  // that differs) to end the job with one clear message and no rank left waiting.
  template <typename Check>
  void together(Check&& check) {
    try {
      check();
    } catch (const Error& e) {
      agree(&e);
      return;
    }
    agree(nullptr);
  }
  // together()'s second half: `failure` is this rank's error, or null.
  void agree(const Error* failure);
  void barrier();

  // Ends every process of the job with `status` (MPI_Abort); a job of one just exits.
  [[noreturn]] void abort(int status);
  // Leaves the job cleanly (MPI_Finalize); done at exit by the destructor too.
  void finalize();

  ~Job();
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

 private:
  Job();
  int rank_ = 0, size_ = 1, local_rank_ = 0;
  bool joined_ = false;  // MPI initialised by us and not yet finalised
};

}  // namespace mb::dist
