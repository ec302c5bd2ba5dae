// Reductions of buffers that live in a backend's memory, between the ranks of a job: the
// gradients, summed once per optimiser step, and the parameters, gathered after a sharded
// optimiser step (train.zero: 1). MPI on host memory (the CPU backend); NCCL between GPUs,
// its communicator set up over MPI (NCCL's id broadcast from rank 0), as llm.c does.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "backend/backend.hpp"
#include "dist/job.hpp"
#include "dist/shard.hpp"

namespace mb::dist {

class Collectives {
 public:
  virtual ~Collectives() = default;
  // buffer[0..n) = the sum over every rank of its buffer[0..n), on every rank.
  virtual void all_reduce_sum(float* buffer, std::size_t n) = 0;
  // Every rank's part (sharding.part(rank)) of `buffer` to every other rank's buffer.
  virtual void all_gather(float* buffer, const Sharding& sharding) = 0;
  // "MPI", "NCCL", or "none" in a job of one.
  virtual std::string engine() const = 0;
};

// The collectives of `job` for buffers in `backend`'s memory. In a job of one they do
// nothing. Throws mb::Error where the backend's memory has no engine in this build (CUDA
// without NCCL).
std::unique_ptr<Collectives> make_collectives(Job& job, backend::Backend& backend);

// Defined in nccl_collectives.cpp, which is built into the CUDA module where NCCL was found
// (MEGABYTE_HAVE_NCCL); called through the module (backend/cuda_module.hpp).
std::unique_ptr<Collectives> make_nccl_collectives(Job& job);

}  // namespace mb::dist
