// Deterministic sums over rows for parameter gradients (bias, layernorm weight).
//
// Backward kernels split the rows into tasks of consecutive rows; each task writes its own
// slot of partial column sums, and the slots are then added in task order. The split depends
// on N alone, never on the number of threads, and so do the sums: training runs stay
// bit-reproducible on a given machine whatever OMP_NUM_THREADS is.
#pragma once

#include <cstddef>

namespace mb::kernels::cpu::detail {

// At least kMinRowsPerTask rows per task (less would not pay for a slot), at most kMaxTasks
// tasks (enough for any core count; it bounds the partial sums at kMaxTasks rows).
constexpr int kMinRowsPerTask = 32;
constexpr int kMaxTasks = 256;

struct RowTasks {
  int rows;   // rows per task (the last task may have fewer)
  int count;  // number of tasks
  int begin(int t) const { return t * rows; }
  int end(int t, int N) const { return t + 1 == count ? N : (t + 1) * rows; }
};

inline RowTasks row_tasks(int N) {
  int rows = (N + kMaxTasks - 1) / kMaxTasks;
  if (rows < kMinRowsPerTask) rows = kMinRowsPerTask;
  return {rows, (N + rows - 1) / rows};
}

// dst[0..C) += sum over t < tasks of partial[t * stride + 0..C), adding in increasing t.
// Column blocks run in parallel when `parallel` is set.
void add_partials(float* dst, const float* partial, int tasks, std::size_t stride, int C,
                  bool parallel);

}  // namespace mb::kernels::cpu::detail
