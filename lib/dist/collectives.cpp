#include "dist/collectives.hpp"

#include "backend/cuda_module.hpp"

#include <algorithm>
#include <vector>

#ifdef MEGABYTE_HAVE_MPI
#include "dist/mpi_calls.hpp"
#endif

namespace mb::dist {

namespace {

class NoCollectives final : public Collectives {
 public:
  void all_reduce_sum(float*, std::size_t) override {}
  void all_gather(float*, const Sharding&) override {}
  std::string engine() const override { return "none"; }
};

#ifdef MEGABYTE_HAVE_MPI
using mpi::check;
using mpi::kMaxCount;

// Host memory (the CPU backend's): MPI itself.
class MpiCollectives final : public Collectives {
 public:
  explicit MpiCollectives(Job& job) : job_(job) {}

  void all_reduce_sum(float* buffer, std::size_t n) override {
    mpi::sum_in_place(buffer, n, MPI_FLOAT);
  }

  void all_gather(float* buffer, const Sharding& sharding) override {
    // Each rank's part in turn from its owner: parts may be unequal, and longer than an int.
    for (int r = 0; r < job_.size(); ++r) {
      const Range part = sharding.part(r);
      for (std::size_t i = part.begin; i < part.end; i += kMaxCount)
        check(MPI_Bcast(buffer + i, static_cast<int>(std::min(kMaxCount, part.end - i)), MPI_FLOAT,
                        r, MPI_COMM_WORLD),
              "MPI_Bcast");
    }
  }

  std::string engine() const override { return "MPI"; }

 private:
  Job& job_;
};
#endif

}  // namespace

std::unique_ptr<Collectives> make_collectives(Job& job, backend::Backend& backend) {
  if (job.single()) return std::make_unique<NoCollectives>();
  if (backend.shares_host_memory()) {
#ifdef MEGABYTE_HAVE_MPI
    return std::make_unique<MpiCollectives>(job);
#endif
  }
  // The backend's memory is a GPU's, so the CUDA module is loaded.
  const backend::CudaModule* cuda = backend::cuda_module(nullptr);
  if (!cuda || !cuda->make_nccl_collectives)
    throw AgreedError(backend.description(), "this build has no NCCL to join the ranks' GPU memory",
                      "build megabyte where the CUDA toolkit's NCCL (nccl.h, libnccl) is found, or "
                      "train on --device cpu");
  return cuda->make_nccl_collectives(job);
}

}  // namespace mb::dist
