// NCCL between the GPUs of a job: one communicator over every rank, its unique id made by
// rank 0 and broadcast over MPI (as llm.c does). The CUDA backend runs everything on the
// default stream in call order, so the collectives run there too: they start after the
// backward pass's kernels and the optimiser's kernels start after them, with no extra sync.
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <algorithm>
#include <string>

#include "dist/collectives.hpp"

namespace mb::dist {

namespace {

void check_nccl(ncclResult_t rc, const char* what) {
  if (rc == ncclSuccess) return;
  throw Error("NCCL", std::string(what) + " failed: " + ncclGetErrorString(rc),
              "run with NCCL_DEBUG=WARN for NCCL's own account");
}

class NcclCollectives final : public Collectives {
 public:
  explicit NcclCollectives(Job& job) : job_(job) {
    ncclUniqueId id{};
    if (job.is_root()) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    if (MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
      throw Error("MPI", "the broadcast of NCCL's id failed");
    check_nccl(ncclCommInitRank(&comm_, job.size(), id, job.rank()), "ncclCommInitRank");
  }
  ~NcclCollectives() override {
    if (comm_) ncclCommDestroy(comm_);
  }

  void all_reduce_sum(float* buffer, std::size_t n) override {
    check_nccl(ncclAllReduce(buffer, buffer, n, ncclFloat32, ncclSum, comm_, stream()),
               "ncclAllReduce");
  }

  void all_gather(float* buffer, const Sharding& sharding) override {
    // ncclAllGather wants equal parts; the last ones may be shorter, so each part is broadcast
    // from its owner, all in one group.
    check_nccl(ncclGroupStart(), "ncclGroupStart");
    for (int r = 0; r < job_.size(); ++r) {
      const Range part = sharding.part(r);
      if (part.size() == 0) continue;
      check_nccl(ncclBroadcast(buffer + part.begin, buffer + part.begin, part.size(), ncclFloat32,
                               r, comm_, stream()),
                 "ncclBroadcast");
    }
    check_nccl(ncclGroupEnd(), "ncclGroupEnd");
  }

  std::string engine() const override { return "NCCL"; }

 private:
  // The CUDA backend's stream: the legacy default stream.
  static cudaStream_t stream() { return cudaStreamLegacy; }

  Job& job_;
  ncclComm_t comm_ = nullptr;
};

}  // namespace

std::unique_ptr<Collectives> make_nccl_collectives(Job& job) {
  return std::make_unique<NcclCollectives>(job);
}

}  // namespace mb::dist
