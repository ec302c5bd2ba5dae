// Short-sequence causal attention on the GPU (see short_attention.cuh): one block of 8 warps
// per (sequence b, head h), one launch per pass, the whole sequence's keys and values staged
// in shared memory with rows padded to d + 1 floats (lane j reading row j then hits bank
// (j·(d + 1) + e) mod 32: all different for even d).
//
// - forward: warp w takes queries t = w, w + 8, ...; lane owns keys j = lane + 32c (c < 8) and
//   holds their scores in registers, so the softmax is exact in two passes over the row (the
//   warp's max, then exp and the warp's sum); no online rescaling. The output row is spread
//   over the lanes (lane owns elements e = lane + 32c) and sums the keys in increasing order,
//   each p_j broadcast from its lane by shuffle. lse = m + logf(l).
// - backward, in the same single launch, no atomics and no global scratch:
//   0. lse and D_t = dout_t · out_t of every query into shared memory (a warp per query).
//   1. dQ: query tiles of 32 (scaled queries and dout rows staged) in order; warp w owns the
//      tile's queries w, w + 8, w + 16, w + 24; lane owns keys j = lane + 32c and recomputes
//      p = exp(s - lse), dP = dout_t · v_j, dS = p (dP - D_t); the warp sums dS_j k_j over the
//      keys in increasing order (broadcast by shuffle) and adds scale times it to dqkv.
//   2. dK, dV: key tiles of 32; warp w owns the tile's keys w, w + 8, w + 16, w + 24, their
//      sums in registers. The query tiles from the key tile on are staged again in order;
//      lane i recomputes p and dS of query t0 + i against each key, and the warp adds the
//      queries in increasing order: dV_j += p_tj dout_t, dK_j += dS_tj (q_t / sqrt(d)).
//   Phase 1 writes only q rows of dqkv and phase 2 only k and v rows, each row by one warp, so
//   every sum has a fixed order and the results are bit-reproducible.
// The arithmetic is the CPU twin's (queries scaled by 1/sqrt(d) before the dot products, dQ
// scaled last, the same sums in the same order of keys or queries); they differ by expf/logf
// against the CPU's exp_approx/std::log, by the order of the softmax sum and of D (warp
// butterflies against the CPU's vectorised loops), and by fused multiply-adds in the dot
// products, which nvcc contracts and the CPU build does not.
#include "cuda/short_attention.cuh"

#include "cuda/attention_common.cuh"
#include "cuda/common.cuh"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>

namespace mb::kernels::cuda {
namespace {

using namespace attention_detail;
using cpu::kShortAttentionMaxHeadDim;
using cpu::kShortAttentionMaxT;

constexpr int kWarps = 8;  // warps per block
constexpr int kThreads = kWarps * kWarp;
constexpr int kTile = cpu::kShortAttentionQueryTile;       // queries (keys) per staged tile
constexpr int kPer = kShortAttentionMaxHeadDim / kWarp;    // row elements per lane
constexpr int kKeysPerLane = kShortAttentionMaxT / kWarp;  // a query's scores per lane
constexpr int kRowsPerWarp = kTile / kWarps;               // queries (keys) of a tile per warp
static_assert(kTile == kWarp, "the backward gives each lane one query of a tile");
static_assert(kPer * kWarp == kShortAttentionMaxHeadDim);
static_assert(kKeysPerLane * kWarp == kShortAttentionMaxT);
static_assert(cpu::kShortAttentionMaxSmemBytes <= 163 * 1024,
              "more shared memory than an A100 block may opt in to");

// The forward's shared memory: keys and values [T][d + 1], each warp's scaled query [kWarps][d].
// Always less than the backward's (cpu::short_attention_backward_smem_bytes), which holds
// 64 rows of d + 1 floats more, so short_attention_fits bounds both.
std::size_t forward_smem_bytes(int T, int d) {
  return (2 * static_cast<std::size_t>(T) * (d + 1) + static_cast<std::size_t>(kWarps) * d) *
         sizeof(float);
}

__global__ void __launch_bounds__(kThreads)
    forward_kernel(float* __restrict__ out, float* __restrict__ lse, const float* __restrict__ qkv,
                   Layout L, float scale) {
  extern __shared__ float smem[];
  const int T = L.T, d = L.d, kp = d + 1;
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int b = static_cast<int>(blockIdx.x) / L.H, h = static_cast<int>(blockIdx.x) % L.H;
  float* Ks = smem;
  float* Vs = Ks + T * kp;
  float* q = Vs + T * kp + warp * d;  // this warp's query row

  stage_rows(Ks, kp, qkv + L.qkv(b, 0, 1, h), L.qkv_stride(), T, d, 1.0f);
  stage_rows(Vs, kp, qkv + L.qkv(b, 0, 2, h), L.qkv_stride(), T, d, 1.0f);
  __syncthreads();

  for (int t = warp; t < T; t += kWarps) {  // warp-uniform
    const float* qrow = qkv + L.qkv(b, t, 0, h);
    __syncwarp();  // every lane is done with the previous query
    for (int e = lane; e < d; e += kWarp) q[e] = qrow[e] * scale;
    __syncwarp();
    const int n = t + 1;  // causal: keys 0..t

    float p[kKeysPerLane];  // scores, then exp(score - max)
    float mx = -INFINITY;
#pragma unroll
    for (int c = 0; c < kKeysPerLane; ++c) {
      const int j = lane + c * kWarp;
      p[c] = j < n ? dot(q, Ks + j * kp, d) : -INFINITY;
      mx = fmaxf(mx, p[c]);
    }
    mx = warp_max(mx);  // finite: key 0 is always seen
    float sum = 0.0f;
#pragma unroll
    for (int c = 0; c < kKeysPerLane; ++c) {
      p[c] = lane + c * kWarp < n ? expf(p[c] - mx) : 0.0f;
      sum += p[c];
    }
    const float l = warp_sum(sum);

    float acc[kPer];
#pragma unroll
    for (int c = 0; c < kPer; ++c) acc[c] = 0.0f;
#pragma unroll
    for (int c = 0; c < kKeysPerLane; ++c) {
      const int nc = min(kWarp, n - c * kWarp);  // keys of chunk c that t sees
      if (nc <= 0) break;                        // warp-uniform
      for (int jj = 0; jj < nc; ++jj) {          // keys in increasing order
        const float pj = __shfl_sync(kFull, p[c], jj);
        const float* v = Vs + (c * kWarp + jj) * kp;
#pragma unroll
        for (int cc = 0; cc < kPer; ++cc) {
          const int e = lane + cc * kWarp;
          if (e < d) acc[cc] += pj * v[e];
        }
      }
    }
    const float inv = 1.0f / l;
    float* o = out + L.out(b, t, h);
#pragma unroll
    for (int cc = 0; cc < kPer; ++cc) {
      const int e = lane + cc * kWarp;
      if (e < d) o[e] = acc[cc] * inv;
    }
    if (lse && lane == 0) lse[L.lse(b, h, t)] = mx + logf(l);
  }
}

// The backward's shared memory, carved in the order that cpu::short_attention_backward_smem_bytes
// counts: K, V [T][d + 1]; the staged query tile Q (scaled), dO [kTile][d + 1]; lse, D [T].
struct BackwardSmem {
  float *K, *V, *Q, *dO, *lse, *D;
  __device__ BackwardSmem(float* smem, int T, int kp)
      : K(smem),
        V(K + T * kp),
        Q(V + T * kp),
        dO(Q + kTile * kp),
        lse(dO + kTile * kp),
        D(lse + T) {}
};

// Stages queries t0 .. t0 + nq - 1: scaled queries into sm.Q, their dout rows into sm.dO.
__device__ void stage_query_tile(const BackwardSmem& sm, const float* qkv, const float* dout,
                                 const Layout& L, int b, int h, int t0, int nq, float scale) {
  stage_rows(sm.Q, L.d + 1, qkv + L.qkv(b, t0, 0, h), L.qkv_stride(), nq, L.d, scale);
  stage_rows(sm.dO, L.d + 1, dout + L.out(b, t0, h), L.out_stride(), nq, L.d, 1.0f);
}

// Staged query i (position t) against key j: p = exp(s - lse), dS = p (dout_t · v_j - D_t).
struct ScoreGrad {
  float p, ds;
};
__device__ ScoreGrad score_grad(const BackwardSmem& sm, int kp, int d, int i, int t, int j) {
  const float s = dot(sm.Q + i * kp, sm.K + j * kp, d);
  const float dp = dot(sm.dO + i * kp, sm.V + j * kp, d);
  const float p = expf(s - sm.lse[t]);
  return {p, p * (dp - sm.D[t])};
}

__global__ void __launch_bounds__(kThreads)
    backward_kernel(float* __restrict__ dqkv, const float* __restrict__ dout,
                    const float* __restrict__ out, const float* __restrict__ lse,
                    const float* __restrict__ qkv, Layout L, float scale, bool accumulate) {
  extern __shared__ float smem[];
  const int T = L.T, d = L.d, kp = d + 1;
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int b = static_cast<int>(blockIdx.x) / L.H, h = static_cast<int>(blockIdx.x) % L.H;
  const BackwardSmem sm(smem, T, kp);

  stage_rows(sm.K, kp, qkv + L.qkv(b, 0, 1, h), L.qkv_stride(), T, d, 1.0f);
  stage_rows(sm.V, kp, qkv + L.qkv(b, 0, 2, h), L.qkv_stride(), T, d, 1.0f);
  // 0. lse and D of every query.
  for (int t = warp; t < T; t += kWarps) {  // warp-uniform
    const float* g = dout + L.out(b, t, h);
    const float* y = out + L.out(b, t, h);
    float acc = 0.0f;
    for (int e = lane; e < d; e += kWarp) acc += g[e] * y[e];
    acc = warp_sum(acc);
    if (lane == 0) {
      sm.D[t] = acc;
      sm.lse[t] = lse[L.lse(b, h, t)];
    }
  }

  // 1. dQ, warps owning queries.
  for (int t0 = 0; t0 < T; t0 += kTile) {
    const int nq = min(kTile, T - t0);
    __syncthreads();  // K, V, lse, D are written; the previous tile is consumed
    stage_query_tile(sm, qkv, dout, L, b, h, t0, nq, scale);
    __syncthreads();
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int i = warp + r * kWarps, t = t0 + i;
      if (i >= nq) break;  // warp-uniform
      const int n = t + 1;
      float ds[kKeysPerLane];
#pragma unroll
      for (int c = 0; c < kKeysPerLane; ++c) {
        const int j = lane + c * kWarp;
        ds[c] = j < n ? score_grad(sm, kp, d, i, t, j).ds : 0.0f;
      }
      float acc[kPer];
#pragma unroll
      for (int cc = 0; cc < kPer; ++cc) acc[cc] = 0.0f;
#pragma unroll
      for (int c = 0; c < kKeysPerLane; ++c) {
        const int nc = min(kWarp, n - c * kWarp);
        if (nc <= 0) break;                // warp-uniform
        for (int jj = 0; jj < nc; ++jj) {  // keys in increasing order
          const float dsj = __shfl_sync(kFull, ds[c], jj);
          const float* k = sm.K + (c * kWarp + jj) * kp;
#pragma unroll
          for (int cc = 0; cc < kPer; ++cc) {
            const int e = lane + cc * kWarp;
            if (e < d) acc[cc] += dsj * k[e];
          }
        }
      }
      float* gq = dqkv + L.qkv(b, t, 0, h);
#pragma unroll
      for (int cc = 0; cc < kPer; ++cc) {
        const int e = lane + cc * kWarp;
        if (e < d) gq[e] = (accumulate ? gq[e] : 0.0f) + scale * acc[cc];
      }
    }
  }

  // 2. dK, dV, warps owning keys; lane i is query t0 + i of each staged tile.
  for (int k0 = 0; k0 < T; k0 += kTile) {
    const int nk = min(kTile, T - k0);
    float dk[kRowsPerWarp][kPer], dv[kRowsPerWarp][kPer];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r)
#pragma unroll
      for (int cc = 0; cc < kPer; ++cc) dk[r][cc] = dv[r][cc] = 0.0f;
    for (int t0 = k0; t0 < T; t0 += kTile) {  // queries before the key tile see none of it
      const int nq = min(kTile, T - t0);
      __syncthreads();  // the previous tile is consumed
      stage_query_tile(sm, qkv, dout, L, b, h, t0, nq, scale);
      __syncthreads();
      const int i = lane, t = t0 + lane;
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        const int j = k0 + warp + r * kWarps;
        if (j >= k0 + nk) break;  // warp-uniform
        const ScoreGrad g =
            i < nq && t >= j ? score_grad(sm, kp, d, i, t, j) : ScoreGrad{0.0f, 0.0f};
        for (int qi = 0; qi < nq; ++qi) {  // queries in increasing order
          const float pq = __shfl_sync(kFull, g.p, qi);
          const float dsq = __shfl_sync(kFull, g.ds, qi);
#pragma unroll
          for (int cc = 0; cc < kPer; ++cc) {
            const int e = lane + cc * kWarp;
            if (e < d) {
              dv[r][cc] += pq * sm.dO[qi * kp + e];
              dk[r][cc] += dsq * sm.Q[qi * kp + e];
            }
          }
        }
      }
    }
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int j = k0 + warp + r * kWarps;
      if (j >= k0 + nk) break;
      float* gk = dqkv + L.qkv(b, j, 1, h);
      float* gv = dqkv + L.qkv(b, j, 2, h);
#pragma unroll
      for (int cc = 0; cc < kPer; ++cc) {
        const int e = lane + cc * kWarp;
        if (e < d) {
          gk[e] = (accumulate ? gk[e] : 0.0f) + dk[r][cc];
          gv[e] = (accumulate ? gv[e] : 0.0f) + dv[r][cc];
        }
      }
    }
  }
}

// The CPU twin's checks and message (cpu/short_attention.cpp), so both refuse the same shapes
// in the same words; a shape only this device's shared memory refuses says so.
void check_sizes(const char* what, int B, int T, int H, int d) {
  if (B < 0 || H < 0) throw std::invalid_argument(std::string(what) + ": need B, H >= 0");
  if (!cpu::short_attention_fits(T, d))
    throw std::invalid_argument(std::string(what) + ": sequences of T = " + std::to_string(T) +
                                " with heads of d = " + std::to_string(d) +
                                " do not fit (see short_attention_fits); use attention");
  if (!short_attention_fits(T, d))
    throw std::invalid_argument(std::string(what) + ": sequences of T = " + std::to_string(T) +
                                " with heads of d = " + std::to_string(d) + " need " +
                                std::to_string(cpu::short_attention_backward_smem_bytes(T, d)) +
                                " bytes of shared memory, and this GPU allows a block " +
                                std::to_string(short_attention_max_smem_bytes()) +
                                "; use attention");
}

// One block per (b, h).
unsigned blocks(int B, int H) {
  const long long n = static_cast<long long>(B) * H;
  if (n > INT_MAX) throw std::invalid_argument("short_attention: B * H exceeds the grid");
  return static_cast<unsigned>(n);
}

}  // namespace

std::size_t short_attention_max_smem_bytes() {
  int device = 0, optin = 0;
  MB_CUDA_CHECK(cudaGetDevice(&device));
  MB_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  return std::min(cpu::kShortAttentionMaxSmemBytes, static_cast<std::size_t>(optin));
}

bool short_attention_fits(int T, int d) {
  return cpu::short_attention_fits(T, d, short_attention_max_smem_bytes());
}

void short_attention_forward(float* out, float* lse, const float* qkv, int B, int T, int H, int d) {
  check_sizes("short_attention_forward", B, T, H, d);
  if (B == 0 || T == 0 || H == 0) return;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const std::size_t smem = forward_smem_bytes(T, d);
  allow_smem(forward_kernel, smem);
  forward_kernel<<<blocks(B, H), kThreads, smem>>>(out, lse, qkv, Layout{T, H, d}, scale);
  MB_CUDA_CHECK_LAUNCH();
}

void short_attention_backward(float* dqkv, const float* dout, const float* out, const float* lse,
                              const float* qkv, int B, int T, int H, int d, bool accumulate_dqkv) {
  check_sizes("short_attention_backward", B, T, H, d);
  if (B == 0 || T == 0 || H == 0) return;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const std::size_t smem = cpu::short_attention_backward_smem_bytes(T, d);
  allow_smem(backward_kernel, smem);
  backward_kernel<<<blocks(B, H), kThreads, smem>>>(dqkv, dout, out, lse, qkv, Layout{T, H, d},
                                                    scale, accumulate_dqkv);
  MB_CUDA_CHECK_LAUNCH();
}

}  // namespace mb::kernels::cuda
