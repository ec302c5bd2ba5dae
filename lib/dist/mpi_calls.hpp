// What the MPI parts of dist/ share (included only where MEGABYTE_HAVE_MPI): MPI's return codes
// as mb::Error, and MPI's int counts over buffers longer than an int.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <cstddef>
#include <string>

#include "core/error.hpp"

namespace mb::dist::mpi {

// MPI counts are ints: a long buffer goes over in pieces of at most 2^30 values.
inline constexpr std::size_t kMaxCount = std::size_t{1} << 30;

// Throws mb::Error naming the call and MPI's own words unless rc is MPI_SUCCESS.
inline void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw Error("MPI",
              std::string(what) + " failed: " + std::string(text, static_cast<std::size_t>(len)),
              "see the launcher's messages above; every rank must run the same command");
}

// values[0..n) = their sum over every rank, in place.
template <typename T>
void sum_in_place(T* values, std::size_t n, MPI_Datatype type) {
  for (std::size_t i = 0; i < n; i += kMaxCount)
    check(MPI_Allreduce(MPI_IN_PLACE, values + i, static_cast<int>(std::min(kMaxCount, n - i)),
                        type, MPI_SUM, MPI_COMM_WORLD),
          "MPI_Allreduce");
}

}  // namespace mb::dist::mpi
