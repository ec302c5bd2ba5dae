// Deterministic column sums over rows for parameter gradients (bias, layernorm weight).
//
// Unlike the CPU kernels, which add the rows in order into the gradient itself (so that the
// chunks of train.local_chunk give the unchunked bits: cpu/weight_gradient.hpp), these sums
// depend on N through the task split: on a GPU, chunked gradients agree to rounding.
//
// A backward kernel splits the N rows into tasks of consecutive rows (row_split, a function of
// N alone). One thread per (column, task) walks its rows in increasing order and writes its
// sum to its own slot partial[task * stride + column]; add_column_partials then adds the
// slots in task order, one thread per column. No atomics anywhere, so every run adds the same
// numbers in the same order and the gradients are bit-reproducible on a given GPU.
//
// Internal to the .cu files (device code).
#pragma once

#include <cstddef>

namespace mb::kernels::cuda::detail {

// At least kMinRowsPerTask rows per task (fewer would not pay for a slot), at most kMaxTasks
// tasks: enough (column, task) threads to fill a GPU for the layer widths we use, while the
// second pass adds at most kMaxTasks slots per column.
constexpr int kMinRowsPerTask = 16;
constexpr int kMaxTasks = 256;

// Pass-1 block shape: 32 columns (one warp reads 32 consecutive floats of one row, a
// coalesced 128-byte access) by kTasksPerBlock tasks.
constexpr int kColsPerBlock = 32;
constexpr int kTasksPerBlock = 8;

struct RowSplit {
  int rows;   // rows per task (the last task may have fewer)
  int tasks;  // number of tasks
  __host__ __device__ int begin(int t) const { return t * rows; }
  __host__ __device__ int end(int t, int N) const { return t + 1 == tasks ? N : (t + 1) * rows; }
};

// N >= 1.
inline RowSplit row_split(int N) {
  int tasks = (N + kMinRowsPerTask - 1) / kMinRowsPerTask;
  if (tasks > kMaxTasks) tasks = kMaxTasks;
  if (tasks < 1) tasks = 1;
  const int rows = (N + tasks - 1) / tasks;
  return {rows, (N + rows - 1) / rows};
}

// Pass-1 launch geometry for C columns and `tasks` tasks: thread (x, y) of block (bx, by)
// owns column bx * kColsPerBlock + x and task by * kTasksPerBlock + y.
inline dim3 colsum_block() { return dim3(kColsPerBlock, kTasksPerBlock); }
inline dim3 colsum_grid(int C, int tasks) {
  return dim3(static_cast<unsigned>((C + kColsPerBlock - 1) / kColsPerBlock),
              static_cast<unsigned>((tasks + kTasksPerBlock - 1) / kTasksPerBlock));
}

// dst[0..C) += partial[t * stride + 0..C) for t = 0, 1, ..., tasks - 1, in that order. All
// pointers are device pointers; runs on the default stream.
void add_column_partials(float* dst, const float* partial, int tasks, std::size_t stride, int C);

}  // namespace mb::kernels::cuda::detail
