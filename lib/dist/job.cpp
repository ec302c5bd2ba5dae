#include "dist/job.hpp"

#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>

#ifdef MEGABYTE_HAVE_MPI
#include "dist/mpi_calls.hpp"
#endif

namespace mb::dist {

#ifdef MEGABYTE_HAVE_MPI
using mpi::check;
using mpi::kMaxCount;
using mpi::sum_in_place;
#endif

namespace {

int env_int(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return *end == '\0' && n > 0 && n < std::numeric_limits<int>::max() ? static_cast<int>(n) : 0;
}

}  // namespace

int launched_processes() {
  // OpenMPI's mpirun; MPICH/Hydra and Slurm's PMI-2; Slurm's srun with PMIx (its step size).
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (const int n = env_int(name)) return n;
  if (std::getenv("PMIX_RANK") || std::getenv("PMI_RANK"))
    if (const int n = env_int("SLURM_STEP_NUM_TASKS")) return n;
  return 1;
}

int launched_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"})
    if (const char* v = std::getenv(name)) return std::atoi(v);
  return 0;
}

bool built_with_mpi() {
#ifdef MEGABYTE_HAVE_MPI
  return true;
#else
  return false;
#endif
}

Job& Job::get() {
  static Job job;
  return job;
}

Job::Job() {
  if (launched_processes() <= 1) return;
#ifdef MEGABYTE_HAVE_MPI
  int provided = 0;
  // Only the main thread calls MPI (OpenMP and oneDNN threads never do).
  check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  joined_ = true;
  // Errors come back as return codes (turned into mb::Error by check()), not as an abort
  // inside MPI with no word of what we were doing.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  MPI_Comm node;
  check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node),
        "MPI_Comm_split_type");
  MPI_Comm_rank(node, &local_rank_);
  MPI_Comm_free(&node);
#else
  throw Error(
      "this megabyte",
      "was started as one of " + std::to_string(launched_processes()) +
          " processes (mpirun, srun) but was built without MPI",
      "install libopenmpi-dev and build with meson setup -Dmpi=enabled, or run one process");
#endif
}

Job::~Job() { finalize(); }

void Job::finalize() {
#ifdef MEGABYTE_HAVE_MPI
  if (!joined_) return;
  joined_ = false;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
#endif
}

void Job::abort(int status) {
#ifdef MEGABYTE_HAVE_MPI
  if (joined_) MPI_Abort(MPI_COMM_WORLD, status);
#endif
  std::exit(status);
}

std::string Job::who() const {
  return single() ? std::string()
                  : "rank " + std::to_string(rank_) + " of " + std::to_string(size_);
}

void Job::sum([[maybe_unused]] double* values, std::size_t n) {
  if (single() || n == 0) return;
#ifdef MEGABYTE_HAVE_MPI
  sum_in_place(values, n, MPI_DOUBLE);
#endif
}

void Job::sum([[maybe_unused]] std::int64_t* values, std::size_t n) {
  if (single() || n == 0) return;
#ifdef MEGABYTE_HAVE_MPI
  sum_in_place(values, n, MPI_INT64_T);
#endif
}

bool Job::any(bool flag) {
  std::int64_t n = flag ? 1 : 0;
  sum(&n, 1);
  return n > 0;
}

void Job::broadcast([[maybe_unused]] std::string& text) {
  if (single()) return;
#ifdef MEGABYTE_HAVE_MPI
  std::int64_t length = static_cast<std::int64_t>(text.size());
  check(MPI_Bcast(&length, 1, MPI_INT64_T, 0, MPI_COMM_WORLD), "MPI_Bcast");
  text.resize(static_cast<std::size_t>(length));
  for (std::size_t i = 0; i < text.size(); i += kMaxCount)
    check(MPI_Bcast(text.data() + i, static_cast<int>(std::min(kMaxCount, text.size() - i)),
                    MPI_CHAR, 0, MPI_COMM_WORLD),
          "MPI_Bcast");
#endif
}

void Job::gather_to_root(const float* shard, float* whole, const Sharding& sharding) {
  const Range mine = sharding.part(rank_);
  if (single()) {
    if (whole != shard) std::memmove(whole, shard, mine.size() * sizeof(float));
    return;
  }
#ifdef MEGABYTE_HAVE_MPI
  // Point to point in pieces: a part may exceed an int's count, which MPI_Gatherv cannot take.
  if (is_root()) {
    std::memmove(whole + mine.begin, shard, mine.size() * sizeof(float));
    for (int r = 1; r < size_; ++r) {
      const Range part = sharding.part(r);
      for (std::size_t i = part.begin; i < part.end; i += kMaxCount)
        check(MPI_Recv(whole + i, static_cast<int>(std::min(kMaxCount, part.end - i)), MPI_FLOAT, r,
                       0, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
              "MPI_Recv");
    }
  } else {
    for (std::size_t i = 0; i < mine.size(); i += kMaxCount)
      check(MPI_Send(shard + i, static_cast<int>(std::min(kMaxCount, mine.size() - i)), MPI_FLOAT,
                     0, 0, MPI_COMM_WORLD),
            "MPI_Send");
  }
#endif
}

void Job::agree(const Error* failure) {
  if (single()) {
    if (failure) throw AgreedError(failure->where(), failure->message(), failure->hint());
    return;
  }
#ifdef MEGABYTE_HAVE_MPI
  // The lowest failing rank speaks for all: its where, what and hint go to rank 0.
  std::int64_t first = failure ? rank_ : size_;
  check(MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD),
        "MPI_Allreduce");
  if (first == size_) return;
  const int speaker = static_cast<int>(first);
  std::string parts[3];
  if (failure)
    parts[0] = failure->where(), parts[1] = failure->message(), parts[2] = failure->hint();
  if (speaker != 0) {
    for (std::string& text : parts) {
      if (rank_ == speaker) {
        check(MPI_Send(text.data(), static_cast<int>(text.size()), MPI_CHAR, 0, 1, MPI_COMM_WORLD),
              "MPI_Send");
      } else if (is_root()) {
        MPI_Status status;
        check(MPI_Probe(speaker, 1, MPI_COMM_WORLD, &status), "MPI_Probe");
        int count = 0;
        MPI_Get_count(&status, MPI_CHAR, &count);
        text.resize(static_cast<std::size_t>(count));
        check(MPI_Recv(text.data(), count, MPI_CHAR, speaker, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
              "MPI_Recv");
      }
    }
  }
  throw AgreedError(
      parts[0],
      "rank " + std::to_string(speaker) + " of " + std::to_string(size_) + ": " + parts[1],
      parts[2]);
#endif
}

void Job::barrier() {
  if (single()) return;
#ifdef MEGABYTE_HAVE_MPI
  check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
#endif
}

}  // namespace mb::dist
