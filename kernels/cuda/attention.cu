// Causal self-attention on the GPU: plain fp32 CUDA cores, one warp per row (see
// attention.cuh). Tiles are 32 rows (the warp size), so that within a tile one lane can own
// one query or one key:
//
// - forward: a block of kWarps warps per (b, h, tile of kWarps queries); warp w owns query
//   q0 + w. Key tiles of 32 keys (and their values) are staged in shared memory; lane j scores
//   key j, the warp takes the tile's max and sum with shuffles (online softmax: running max m,
//   running sum l, rescaled accumulator), and the accumulator o[0..d) is spread over the lanes
//   (lane owns elements lane, lane + 32, ...).
// - backward, three launches, no atomics:
//   1. D[b, h, t] = dout[t] · out[t], one warp per row.
//   2. dK, dV: a block per (b, h, tile of 32 keys); warp w owns keys w, w + 8, w + 16, w + 24
//      of the tile. Query tiles from the key tile onwards are staged in order; lane i
//      recomputes p = exp(s - lse) and dS = p (dP - D) for query i, and the warp adds the 32
//      queries into dK, dV in increasing order (broadcast by shuffle).
//   3. dQ: a block per (b, h, tile of 32 queries); warp w owns queries w, w + 8, ...; key
//      tiles up to the last query are staged in order, lane j recomputes dS for key j, and the
//      warp adds the keys into dQ in increasing order.
//   Every sum has a fixed order, so the results are bit-reproducible.
// The arithmetic is the CPU twin's: queries scaled by 1/sqrt(d) before the dot products,
// dK += dSᵀ · (q / sqrt(d)), dQ += (dS · K) / sqrt(d) (the scale applied last), so the two
// differ only by summation order and expf/logf against the CPU's exp_approx/std::log.
#include "cuda/attention.cuh"

#include "cuda/attention_common.cuh"
#include "cuda/common.cuh"

#include <climits>
#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>

namespace mb::kernels::cuda {
namespace {

using namespace attention_detail;

constexpr int kTile = kWarp;  // keys (or queries) per staged tile
constexpr int kWarps = 8;     // warps per block
constexpr int kThreads = kWarps * kWarp;
constexpr int kPer = kAttentionMaxHeadDim / kWarp;  // row elements per lane
constexpr int kRowsPerWarp = kTile / kWarps;        // backward: keys (queries) per warp

// Shared memory: keys [kTile][d + 1] (padded: lane j reads row j), values [kTile][d] (lanes
// read along a row), the block's scaled queries [kWarps][d].
std::size_t forward_smem(int d) {
  return (static_cast<std::size_t>(kTile) * (d + 1) + static_cast<std::size_t>(kTile) * d +
          static_cast<std::size_t>(kWarps) * d) *
         sizeof(float);
}

__global__ void __launch_bounds__(kThreads)
    forward_kernel(float* __restrict__ out, float* __restrict__ lse, const float* __restrict__ qkv,
                   Layout L, int qtiles, float scale) {
  extern __shared__ float smem[];
  const int d = L.d, kp = d + 1;
  float* Ks = smem;
  float* Vs = Ks + kTile * kp;
  float* Qs = Vs + kTile * d;
  const int tile = static_cast<int>(blockIdx.x) % qtiles;
  const int bh = static_cast<int>(blockIdx.x) / qtiles;
  const int b = bh / L.H, h = bh % L.H;
  const int warp = static_cast<int>(threadIdx.x) / kWarp,
            lane = static_cast<int>(threadIdx.x) % kWarp;
  const int q0 = tile * kWarps, nq = min(kWarps, L.T - q0);
  const int t = q0 + warp;
  const bool active = warp < nq;  // warp-uniform
  const std::size_t tstride = 3 * static_cast<std::size_t>(L.H) * d;

  stage_rows(Qs, d, qkv + L.qkv(b, q0, 0, h), tstride, nq, d, scale);
  float m = -INFINITY, l = 0.0f, acc[kPer];
#pragma unroll
  for (int c = 0; c < kPer; ++c) acc[c] = 0.0f;

  const int kend = q0 + nq;  // the last query sees keys up to itself
  for (int k0 = 0; k0 < kend; k0 += kTile) {
    const int nk = min(kTile, kend - k0);
    __syncthreads();  // the previous tile is consumed (and Qs is written)
    stage_rows(Ks, kp, qkv + L.qkv(b, k0, 1, h), tstride, nk, d, 1.0f);
    stage_rows(Vs, d, qkv + L.qkv(b, k0, 2, h), tstride, nk, d, 1.0f);
    __syncthreads();
    const int n = active ? min(nk, t - k0 + 1) : 0;  // causal: keys k0 + j <= t
    if (n <= 0) continue;                            // warp-uniform
    const float s = lane < n ? dot(Qs + warp * d, Ks + lane * kp, d) : -INFINITY;
    const float m_new = fmaxf(m, warp_max(s));
    const float corr = expf(m - m_new);  // 0 on the first tile (m = -inf)
    const float p = lane < n ? expf(s - m_new) : 0.0f;
    l = l * corr + warp_sum(p);
    m = m_new;
#pragma unroll
    for (int c = 0; c < kPer; ++c) acc[c] *= corr;
    for (int j = 0; j < n; ++j) {
      const float pj = __shfl_sync(kFull, p, j);
#pragma unroll
      for (int c = 0; c < kPer; ++c) {
        const int e = lane + c * kWarp;
        if (e < d) acc[c] += pj * Vs[j * d + e];
      }
    }
  }
  if (!active) return;
  const float inv = 1.0f / l;
  float* o = out + L.out(b, t, h);
#pragma unroll
  for (int c = 0; c < kPer; ++c) {
    const int e = lane + c * kWarp;
    if (e < d) o[e] = acc[c] * inv;
  }
  if (lse && lane == 0) lse[L.lse(b, h, t)] = m + logf(l);
}

// D[b, h, t] = dout[b, t, h, :] · out[b, t, h, :]; one warp per row, rows ordered (b, t, h).
__global__ void __launch_bounds__(kThreads)
    rowdot_kernel(float* __restrict__ D, const float* __restrict__ dout,
                  const float* __restrict__ out, Layout L, int rows) {
  const int row = static_cast<int>(blockIdx.x) * kWarps + static_cast<int>(threadIdx.x) / kWarp;
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  if (row >= rows) return;  // warp-uniform
  const int h = row % L.H, bt = row / L.H, t = bt % L.T, b = bt / L.T;
  const float* g = dout + L.out(b, t, h);
  const float* y = out + L.out(b, t, h);
  float acc = 0.0f;
  for (int e = lane; e < L.d; e += kWarp) acc += g[e] * y[e];
  acc = warp_sum(acc);
  if (lane == 0) D[L.lse(b, h, t)] = acc;
}

// Shared memory of both backward kernels: four tiles [kTile][d + 1] (keys, values, scaled
// queries, dout) and lse, D of the staged queries. backward_smem sizes it, BackwardTiles
// carves it, so the two kernels cannot disagree on the layout.
std::size_t backward_smem(int d) {
  return (4 * static_cast<std::size_t>(kTile) * (d + 1) + 2 * kTile) * sizeof(float);
}

struct BackwardTiles {
  float *K, *V, *Q, *dO, *lse, *D;
  __device__ BackwardTiles(float* smem, int kp)
      : K(smem),
        V(K + kTile * kp),
        Q(V + kTile * kp),
        dO(Q + kTile * kp),
        lse(dO + kTile * kp),
        D(lse + kTile) {}
};

__global__ void __launch_bounds__(kThreads)
    backward_dkv_kernel(float* __restrict__ dqkv, const float* __restrict__ dout,
                        const float* __restrict__ lse, const float* __restrict__ D,
                        const float* __restrict__ qkv, Layout L, int ktiles, float scale,
                        bool accumulate) {
  extern __shared__ float smem[];
  const int d = L.d, kp = d + 1;
  const BackwardTiles tiles(smem, kp);
  const int tile = static_cast<int>(blockIdx.x) % ktiles;
  const int bh = static_cast<int>(blockIdx.x) / ktiles;
  const int b = bh / L.H, h = bh % L.H;
  const int warp = static_cast<int>(threadIdx.x) / kWarp,
            lane = static_cast<int>(threadIdx.x) % kWarp;
  const std::size_t tstride = 3 * static_cast<std::size_t>(L.H) * d;
  const std::size_t ostride = static_cast<std::size_t>(L.H) * d;
  const int k0 = tile * kTile, nk = min(kTile, L.T - k0);

  stage_rows(tiles.K, kp, qkv + L.qkv(b, k0, 1, h), tstride, nk, d, 1.0f);
  stage_rows(tiles.V, kp, qkv + L.qkv(b, k0, 2, h), tstride, nk, d, 1.0f);
  float dk[kRowsPerWarp][kPer], dv[kRowsPerWarp][kPer];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r)
#pragma unroll
    for (int c = 0; c < kPer; ++c) dk[r][c] = dv[r][c] = 0.0f;

  // Queries before the key tile see none of its keys.
  for (int t0 = k0; t0 < L.T; t0 += kTile) {
    const int nq = min(kTile, L.T - t0);
    __syncthreads();  // the previous query tile is consumed (and tiles.K, tiles.V are written)
    stage_rows(tiles.Q, kp, qkv + L.qkv(b, t0, 0, h), tstride, nq, d, scale);
    stage_rows(tiles.dO, kp, dout + L.out(b, t0, h), ostride, nq, d, 1.0f);
    if (static_cast<int>(threadIdx.x) < nq) {
      tiles.lse[threadIdx.x] = lse[L.lse(b, h, t0 + static_cast<int>(threadIdx.x))];
      tiles.D[threadIdx.x] = D[L.lse(b, h, t0 + static_cast<int>(threadIdx.x))];
    }
    __syncthreads();
    const int i = lane, t = t0 + lane;  // lane i: query t0 + i
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int jj = warp + r * kWarps, kj = k0 + jj;
      if (jj >= nk) continue;  // warp-uniform
      float p = 0.0f, ds = 0.0f;
      if (i < nq && t >= kj) {
        const float s = dot(tiles.Q + i * kp, tiles.K + jj * kp, d);
        const float dp = dot(tiles.dO + i * kp, tiles.V + jj * kp, d);
        p = expf(s - tiles.lse[i]);
        ds = p * (dp - tiles.D[i]);
      }
      for (int q = 0; q < nq; ++q) {  // queries in increasing order
        const float pq = __shfl_sync(kFull, p, q), dsq = __shfl_sync(kFull, ds, q);
#pragma unroll
        for (int c = 0; c < kPer; ++c) {
          const int e = lane + c * kWarp;
          if (e < d) {
            dv[r][c] += pq * tiles.dO[q * kp + e];
            dk[r][c] += dsq * tiles.Q[q * kp + e];
          }
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int jj = warp + r * kWarps;
    if (jj >= nk) continue;
    float* gk = dqkv + L.qkv(b, k0 + jj, 1, h);
    float* gv = dqkv + L.qkv(b, k0 + jj, 2, h);
#pragma unroll
    for (int c = 0; c < kPer; ++c) {
      const int e = lane + c * kWarp;
      if (e < d) {
        gk[e] = (accumulate ? gk[e] : 0.0f) + dk[r][c];
        gv[e] = (accumulate ? gv[e] : 0.0f) + dv[r][c];
      }
    }
  }
}

__global__ void __launch_bounds__(kThreads)
    backward_dq_kernel(float* __restrict__ dqkv, const float* __restrict__ dout,
                       const float* __restrict__ lse, const float* __restrict__ D,
                       const float* __restrict__ qkv, Layout L, int qtiles, float scale,
                       bool accumulate) {
  extern __shared__ float smem[];
  const int d = L.d, kp = d + 1;
  const BackwardTiles tiles(smem, kp);
  const int tile = static_cast<int>(blockIdx.x) % qtiles;
  const int bh = static_cast<int>(blockIdx.x) / qtiles;
  const int b = bh / L.H, h = bh % L.H;
  const int warp = static_cast<int>(threadIdx.x) / kWarp,
            lane = static_cast<int>(threadIdx.x) % kWarp;
  const std::size_t tstride = 3 * static_cast<std::size_t>(L.H) * d;
  const std::size_t ostride = static_cast<std::size_t>(L.H) * d;
  const int q0 = tile * kTile, nq = min(kTile, L.T - q0);

  stage_rows(tiles.Q, kp, qkv + L.qkv(b, q0, 0, h), tstride, nq, d, scale);
  stage_rows(tiles.dO, kp, dout + L.out(b, q0, h), ostride, nq, d, 1.0f);
  if (static_cast<int>(threadIdx.x) < nq) {
    tiles.lse[threadIdx.x] = lse[L.lse(b, h, q0 + static_cast<int>(threadIdx.x))];
    tiles.D[threadIdx.x] = D[L.lse(b, h, q0 + static_cast<int>(threadIdx.x))];
  }
  float dq[kRowsPerWarp][kPer];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r)
#pragma unroll
    for (int c = 0; c < kPer; ++c) dq[r][c] = 0.0f;

  const int kend = q0 + nq;
  for (int k0 = 0; k0 < kend; k0 += kTile) {
    const int nk = min(kTile, kend - k0);
    __syncthreads();  // the previous key tile is consumed (and the query tile is written)
    stage_rows(tiles.K, kp, qkv + L.qkv(b, k0, 1, h), tstride, nk, d, 1.0f);
    stage_rows(tiles.V, kp, qkv + L.qkv(b, k0, 2, h), tstride, nk, d, 1.0f);
    __syncthreads();
    const int j = lane;  // lane j: key k0 + j
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int ii = warp + r * kWarps, t = q0 + ii;
      if (ii >= nq) continue;             // warp-uniform
      const int n = min(nk, t - k0 + 1);  // keys of this tile that query t sees
      if (n <= 0) continue;               // warp-uniform
      float ds = 0.0f;
      if (j < n) {
        const float s = dot(tiles.Q + ii * kp, tiles.K + j * kp, d);
        const float dp = dot(tiles.dO + ii * kp, tiles.V + j * kp, d);
        const float p = expf(s - tiles.lse[ii]);
        ds = p * (dp - tiles.D[ii]);
      }
      for (int k = 0; k < n; ++k) {  // keys in increasing order
        const float dsk = __shfl_sync(kFull, ds, k);
#pragma unroll
        for (int c = 0; c < kPer; ++c) {
          const int e = lane + c * kWarp;
          if (e < d) dq[r][c] += dsk * tiles.K[k * kp + e];
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int ii = warp + r * kWarps;
    if (ii >= nq) continue;
    float* g = dqkv + L.qkv(b, q0 + ii, 0, h);
#pragma unroll
    for (int c = 0; c < kPer; ++c) {
      const int e = lane + c * kWarp;
      if (e < d) g[e] = (accumulate ? g[e] : 0.0f) + scale * dq[r][c];
    }
  }
}

void check_sizes(int B, int T, int H, int d) {
  if (B < 0 || T < 0 || H < 0 || d <= 0)
    throw std::invalid_argument("attention: need B, T, H >= 0 and d > 0");
  if (d > kAttentionMaxHeadDim)
    throw std::invalid_argument(
        "attention: the CUDA kernels support d <= " + std::to_string(kAttentionMaxHeadDim) +
        ", got " + std::to_string(d));
}

}  // namespace

namespace attention_detail {

unsigned blocks(int B, int H, int tiles) {
  const long long n = static_cast<long long>(B) * H * tiles;
  if (n > INT_MAX) throw std::invalid_argument("attention: B * H * tiles exceeds the grid");
  return static_cast<unsigned>(n);
}

RowDots::RowDots(const float* dout, const float* out, const Layout& L, int B)
    : rows(B * L.T * L.H), values(static_cast<std::size_t>(rows)) {
  rowdot_kernel<<<static_cast<unsigned>(detail::ceil_div(rows, kWarps)), kThreads>>>(
      values.get(), dout, out, L, rows);
  MB_CUDA_CHECK_LAUNCH();
}

}  // namespace attention_detail

void attention_forward(float* out, float* lse, const float* qkv, int B, int T, int H, int d) {
  check_sizes(B, T, H, d);
  if (B == 0 || T == 0 || H == 0) return;
  const Layout L{T, H, d};
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const int qtiles = detail::ceil_div(T, kWarps);
  const std::size_t smem = forward_smem(d);
  allow_smem(forward_kernel, smem);
  forward_kernel<<<blocks(B, H, qtiles), kThreads, smem>>>(out, lse, qkv, L, qtiles, scale);
  MB_CUDA_CHECK_LAUNCH();
}

void attention_backward(float* dqkv, const float* dout, const float* out, const float* lse,
                        const float* qkv, int B, int T, int H, int d, bool accumulate_dqkv) {
  check_sizes(B, T, H, d);
  if (B == 0 || T == 0 || H == 0) return;
  const Layout L{T, H, d};
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const RowDots D(dout, out, L, B);
  const int tiles = detail::ceil_div(T, kTile);
  const std::size_t smem = backward_smem(d);
  allow_smem(backward_dkv_kernel, smem);
  allow_smem(backward_dq_kernel, smem);
  backward_dkv_kernel<<<blocks(B, H, tiles), kThreads, smem>>>(dqkv, dout, lse, D.values.get(), qkv,
                                                               L, tiles, scale, accumulate_dqkv);
  MB_CUDA_CHECK_LAUNCH();
  backward_dq_kernel<<<blocks(B, H, tiles), kThreads, smem>>>(dqkv, dout, lse, D.values.get(), qkv,
                                                              L, tiles, scale, accumulate_dqkv);
  MB_CUDA_CHECK_LAUNCH();
}

}  // namespace mb::kernels::cuda
