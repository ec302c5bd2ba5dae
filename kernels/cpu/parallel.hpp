// Loops split between the OpenMP threads where that pays, and run without OpenMP where it
// does not.
//
// `#pragma omp parallel for if (condition)` still calls into libgomp when the condition is
// false: GCC's libgomp then starts a team of one thread (a malloc and a free) and ends it with a
// futex system call. A cached generation step runs dozens of kernels on one or two rows, each
// too small to share, so every byte generated paid for dozens of those calls (perf: a futex
// system call per kernel call, and malloc/free, about a fifth of the local model's time at
// -j 1). parallel_for runs such a loop as a plain loop on the calling thread instead.
#pragma once

#include <omp.h>

namespace mb::kernels::cpu {

// body(i) for i in [0, count): split statically between the threads (OpenMP's static
// schedule) where `worth_threads` and there are threads to share with, else in order on the
// calling thread. Each iteration does the same work either way, so a kernel whose iterations
// write disjoint outputs gives the same bits on any number of threads.
template <class Index, class Body>
inline void parallel_for(Index count, bool worth_threads, Body&& body) {
  if (!worth_threads || count < 2 || omp_get_max_threads() < 2) {
    for (Index i = 0; i < count; ++i) body(i);
    return;
  }
#pragma omp parallel for schedule(static)
  for (Index i = 0; i < count; ++i) body(i);
}

}  // namespace mb::kernels::cpu
