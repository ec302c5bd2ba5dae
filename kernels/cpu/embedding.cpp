// Embedding lookup. The backward pass groups rows by id with a stable counting sort, then
// gives each id to one thread: no atomics, no races, and the same order of additions on every
// run, which the exact-resume guarantee of training depends on.
#include "cpu/embedding.hpp"

#include "cpu/parallel.hpp"
#include "cpu/simd.hpp"

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace mb::kernels::cpu {
namespace {

void check_ids(const std::int32_t* ids, int N, int C, int V, const char* what) {
  if (N < 0 || C < 0 || V < 0) throw std::invalid_argument(std::string(what) + ": negative size");
  for (int n = 0; n < N; ++n)
    if (ids[n] < 0 || ids[n] >= V)
      throw std::out_of_range(std::string(what) + ": id " + std::to_string(ids[n]) + " at row " +
                              std::to_string(n) + " is outside [0, " + std::to_string(V) + ")");
}

MB_CPU_CLONES
void add_row(float* __restrict dst, const float* __restrict src, int C) {
  for (int i = 0; i < C; ++i) dst[i] += src[i];
}

}  // namespace

void embedding_forward(float* out, const std::int32_t* ids, const float* table, int N, int C,
                       int V) {
  check_ids(ids, N, C, V, "embedding_forward");
  parallel_for(N, static_cast<std::size_t>(N) * C > 65536, [&](int n) {
    const float* __restrict src = table + static_cast<std::size_t>(ids[n]) * C;
    float* __restrict dst = out + static_cast<std::size_t>(n) * C;
    for (int i = 0; i < C; ++i) dst[i] = src[i];
  });
}

void embedding_backward(float* dtable, const float* dout, const std::int32_t* ids, int N, int C,
                        int V) {
  check_ids(ids, N, C, V, "embedding_backward");
  if (N == 0 || C == 0) return;
  // start[v] .. start[v+1]: the rows with id v, in increasing order (stable counting sort).
  std::vector<int> start(static_cast<std::size_t>(V) + 1, 0), rows(N);
  for (int n = 0; n < N; ++n) ++start[ids[n] + 1];
  for (int v = 0; v < V; ++v) start[v + 1] += start[v];
  {
    std::vector<int> next(start.begin(), start.end() - 1);
    for (int n = 0; n < N; ++n) rows[next[ids[n]]++] = n;
  }
  // Dynamic schedule: real byte streams are skewed (spaces, zeros), so ids carry very
  // different numbers of rows.
#pragma omp parallel for schedule(dynamic, 4) if (static_cast <std::size_t>(N) * C > 65536)
  for (int v = 0; v < V; ++v) {
    float* dst = dtable + static_cast<std::size_t>(v) * C;
    for (int j = start[v]; j < start[v + 1]; ++j)
      add_row(dst, dout + static_cast<std::size_t>(rows[j]) * C, C);
  }
}

}  // namespace mb::kernels::cpu
