// Embedding lookup. The forward is a gather, one thread per output element.
//
// The backward uses no atomics: block (v, tile) owns row v of dtable, columns
// [tile · 256, tile · 256 + 256), one column per thread, kept in a register. The block reads
// the ids in chunks of 256 (one per thread), compacts the rows n whose id is v into a
// shared-memory list in increasing n (a ballot per warp plus a prefix over the warps), and
// then every thread adds dout[n, its column] for the listed rows in list order. So each
// element of dtable receives the same additions in the same order as in the CPU twin (rows in
// increasing n), and the result is bit-identical to it, whatever the scheduling. Every block
// scans all N ids: V·N·ceil(C/256) id reads in all, cheap next to the gradient traffic for
// the byte vocabularies we use (V of a few hundred).
#include "cuda/embedding.cuh"

#include "cuda/common.cuh"
#include "cuda/ids.cuh"

#include <stdexcept>
#include <string>

namespace mb::kernels::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kBackwardBlock = 256;  // threads = columns per tile = ids per chunk
constexpr int kWarps = kBackwardBlock / kWarp;

__global__ void forward_kernel(float* out, const std::int32_t* ids, const float* table,
                               std::size_t n, int C) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const std::size_t row = i / static_cast<std::size_t>(C);
    const std::size_t col = i - row * static_cast<std::size_t>(C);
    out[i] = table[static_cast<std::size_t>(ids[row]) * C + col];
  }
}

// Block (blockIdx.x = v, blockIdx.y = column tile); see the file comment. Needs
// blockDim.x == kBackwardBlock. Every thread runs the same number of chunk iterations (the
// loop bound is uniform), so the ballots and barriers are reached by all of them.
__global__ void __launch_bounds__(kBackwardBlock)
    backward_kernel(float* dtable, const float* dout, const std::int32_t* ids, int N, int C) {
  __shared__ int warp_count[kWarps];
  __shared__ int rows[kBackwardBlock];
  const int v = static_cast<int>(blockIdx.x);
  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid % kWarp, warp = tid / kWarp;
  const int c = static_cast<int>(blockIdx.y) * kBackwardBlock + tid;
  const bool owns_column = c < C;
  float* dst = dtable + static_cast<std::size_t>(v) * C + c;
  float acc = owns_column ? *dst : 0.0f;
  for (int base = 0; base < N; base += kBackwardBlock) {
    const int n = base + tid;
    const bool match = n < N && ids[n] == v;
    // Position of this row in the chunk's list: matches in lower warps, then in lower
    // lanes of this warp. That keeps the list in increasing n.
    const unsigned ballot = __ballot_sync(0xFFFFFFFFu, match);
    if (lane == 0) warp_count[warp] = __popc(ballot);
    __syncthreads();
    int before = 0, total = 0;
    for (int w = 0; w < kWarps; ++w) {
      if (w < warp) before += warp_count[w];
      total += warp_count[w];
    }
    if (match) rows[before + __popc(ballot & ((1u << lane) - 1u))] = n;
    __syncthreads();
    if (owns_column)
      for (int j = 0; j < total; ++j) acc += dout[static_cast<std::size_t>(rows[j]) * C + c];
    __syncthreads();  // the next chunk overwrites warp_count and rows
  }
  if (owns_column) *dst = acc;
}

void check_sizes(int N, int C, int V, const char* what) {
  if (N < 0 || C < 0 || V < 0) throw std::invalid_argument(std::string(what) + ": negative size");
}

void check_ids(const std::int32_t* ids, int N, int V, const char* what) {
  const std::string rule = "is outside [0, " + std::to_string(V) + ")";
  detail::check_ids_on_device(ids, N, 0, V, what, "id", rule.c_str());
}

}  // namespace

void embedding_forward(float* out, const std::int32_t* ids, const float* table, int N, int C,
                       int V) {
  check_sizes(N, C, V, "embedding_forward");
  check_ids(ids, N, V, "embedding_forward");
  if (N == 0 || C == 0) return;
  const std::size_t n = static_cast<std::size_t>(N) * C;
  forward_kernel<<<detail::grid_size(n), detail::kBlock>>>(out, ids, table, n, C);
  MB_CUDA_CHECK_LAUNCH();
}

void embedding_backward(float* dtable, const float* dout, const std::int32_t* ids, int N, int C,
                        int V) {
  check_sizes(N, C, V, "embedding_backward");
  check_ids(ids, N, V, "embedding_backward");
  if (N == 0 || C == 0 || V == 0) return;
  const dim3 grid(static_cast<unsigned>(V),
                  static_cast<unsigned>(detail::ceil_div(C, kBackwardBlock)));
  backward_kernel<<<grid, kBackwardBlock>>>(dtable, dout, ids, N, C);
  MB_CUDA_CHECK_LAUNCH();
}

}  // namespace mb::kernels::cuda
