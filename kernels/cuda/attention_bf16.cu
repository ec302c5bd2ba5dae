// Causal attention on tensor cores (see attention_bf16.cuh), FlashAttention's plan in its
// plainest form: WMMA 16×16×16 products with bf16 operands and fp32 accumulation, every
// operand staged in shared memory, and the softmax done by ordinary threads on an fp32 copy of
// the scores. A block has 4 warps; each warp owns 16 rows (queries, or keys in dK/dV), so a
// block owns 64. Every operand is staged as bf16 rows of d + 8 elements (the padding spreads a
// column's elements over the banks; WMMA needs the pitch to be a multiple of 8), rows beyond T
// as zeros, so partial tiles multiply like full ones and the masks alone decide what counts.
//
// - forward: a block per (b, h, 64 queries). Key tiles of 64 from 0 to the block's last query:
//   S = Q·Kᵀ into fp32 shared memory; each row's running max m and sum l (online softmax; all
//   lanes keep every row's m and l, lane j scoring keys j and j + 32); p = exp(s·scale - m)
//   rounded to bf16 (l sums the rounded p, so out is their exact weighted mean); then p·V
//   into the same fp32 tile, added to the output rows that the lanes keep in registers
//   (lane owns columns lane, lane + 32, ...) after rescaling them by exp(m_old - m_new).
//   Every key tile starts at or before the block's first query, so every row sees a key in
//   every tile and m is finite after the first.
// - backward, as attention.cu, three launches and no atomics:
//   1. D = dout · out per row (fp32, attention.cu's RowDots).
//   2. dK, dV: a block per (b, h, 64 keys); query tiles of 32 from the block's first key on.
//      Per tile Sᵀ = K·Qᵀ and dPᵀ = V·doutᵀ, then (lane i: query i of the tile)
//      p = exp(s·scale - lse), dS = p (dP - D), both rounded to bf16, and the accumulator
//      fragments, kept in registers for the whole pass, take dV += pᵀ·dout and dK += dSᵀ·Q.
//   3. dQ: a block per (b, h, 64 queries); key tiles of 32 up to the last query; S and dP
//      again, dS in bf16, dQ += dS·K in registers.
//   The fragments' sums run in tile order, so two runs give the same bits.
// Queries are not pre-scaled (scaling a bf16 value would round it again): the scores are
// scaled in fp32, and dQ, dK take the scale last, as dQ += (dS·K)·scale in the CPU twin.
#include "cuda/attention_bf16.cuh"

#include "cuda/attention_common.cuh"
#include "cuda/common.cuh"

#include <cuda_bf16.h>
#include <mma.h>

#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace mb::kernels::cuda {
namespace {

using namespace attention_detail;
namespace wmma = nvcuda::wmma;
using bf16 = __nv_bfloat16;

constexpr int kEdge = 16;  // WMMA tile edge
constexpr int kWarps = 4;  // warps per block
constexpr int kThreads = kWarps * kWarp;
constexpr int kRows = kWarps * kEdge;  // rows a block owns: 64
constexpr int kForwardKeys = kRows;    // keys per forward tile (= kRows: see above)
constexpr int kBackwardTile = kWarp;   // queries (dK, dV) or keys (dQ) per backward tile
constexpr int kMaxHeadDim = 128;
static_assert(kBackwardTile == kWarp, "the backward's lane i handles row i of a staged tile");

using FragA = wmma::fragment<wmma::matrix_a, kEdge, kEdge, kEdge, bf16, wmma::row_major>;
using FragB = wmma::fragment<wmma::matrix_b, kEdge, kEdge, kEdge, bf16, wmma::row_major>;
using FragBt = wmma::fragment<wmma::matrix_b, kEdge, kEdge, kEdge, bf16, wmma::col_major>;
using FragC = wmma::fragment<wmma::accumulator, kEdge, kEdge, kEdge, float>;

// Pitches (elements): bf16 rows of a head, fp32 score rows, bf16 probability rows. All keep
// every fragment's address 32-byte aligned (WMMA's rule) given 32-byte aligned buffers.
template <int D>
constexpr int kHeadPitch = D + 8;
__host__ __device__ constexpr int score_pitch(int cols) { return cols + 4; }
__host__ __device__ constexpr int prob_pitch(int cols) { return cols + 8; }

// Rows 0 .. rows - 1 of a bf16 tile: row r < n is row r of one head in global memory (row r
// at src + r · stride), rounded to bf16; rows n .. rows - 1 are zeros. The whole block takes
// part; consecutive threads read consecutive elements.
template <int D>
__device__ void stage(bf16* dst, const float* src, std::size_t stride, int n, int rows) {
  for (int idx = static_cast<int>(threadIdx.x); idx < rows * D; idx += kThreads) {
    const int r = idx / D, e = idx % D;
    const float x = r < n ? src[static_cast<std::size_t>(r) * stride + e] : 0.0f;
    dst[r * kHeadPitch<D> + e] = __float2bfloat16_rn(x);
  }
}

// out(16 × 16·nb) = a(16 × D) · bᵀ with b stored as rows: out[i][j] = a row i · b row j for the
// warp's rows of a and 16·nb rows of b, fp32 into out (pitch out_pitch). The product behind
// every score tile (q·kᵀ, dout·vᵀ, k·qᵀ, v·doutᵀ).
template <int D>
__device__ void rows_times_rows(float* out, int out_pitch, const bf16* a, const bf16* b, int nb) {
  for (int j = 0; j < nb; ++j) {
    FragC acc;
    wmma::fill_fragment(acc, 0.0f);
#pragma unroll
    for (int kk = 0; kk < D / kEdge; ++kk) {
      FragA fa;
      FragBt fb;
      wmma::load_matrix_sync(fa, a + kk * kEdge, kHeadPitch<D>);
      wmma::load_matrix_sync(fb, b + j * kEdge * kHeadPitch<D> + kk * kEdge, kHeadPitch<D>);
      wmma::mma_sync(acc, fa, fb, acc);
    }
    wmma::store_matrix_sync(out + j * kEdge, acc, out_pitch, wmma::mem_row_major);
  }
}

// acc += a(16 × 16·na, bf16, pitch a_pitch) · b(16·na rows of a head), columns
// 16c .. 16c + 15 of b: the products that end in a head's columns (p·V, pᵀ·dout, dSᵀ·Q, dS·K).
template <int D>
__device__ void accumulate_column(FragC& acc, const bf16* a, int a_pitch, const bf16* b, int na,
                                  int c) {
  for (int kk = 0; kk < na; ++kk) {
    FragA fa;
    FragB fb;
    wmma::load_matrix_sync(fa, a + kk * kEdge, a_pitch);
    wmma::load_matrix_sync(fb, b + kk * kEdge * kHeadPitch<D> + c * kEdge, kHeadPitch<D>);
    wmma::mma_sync(acc, fa, fb, acc);
  }
}

// accumulate_column for all D / 16 column blocks of accumulators kept across tiles.
template <int D>
__device__ void accumulate_times_rows(FragC (&acc)[D / kEdge], const bf16* a, int a_pitch,
                                      const bf16* b, int na) {
#pragma unroll
  for (int c = 0; c < D / kEdge; ++c) accumulate_column<D>(acc[c], a, a_pitch, b, na, c);
}

// Adds scale · acc (16 rows × D) to rows row0 .. row0 + 15 of one part of dqkv (or, without
// `accumulate`, writes it there as if added to zeros), skipping rows at or beyond T, through a
// 16 × 16 fp32 patch of the warp's shared memory (pitch `pitch`).
template <int D>
__device__ void add_rows(float* dqkv, const Layout& L, int b, int row0, int which, int h,
                         FragC (&acc)[D / kEdge], float scale, float* patch, int pitch,
                         bool accumulate) {
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
#pragma unroll
  for (int c = 0; c < D / kEdge; ++c) {
    wmma::store_matrix_sync(patch, acc[c], pitch, wmma::mem_row_major);
    __syncwarp();
    for (int idx = lane; idx < kEdge * kEdge; idx += kWarp) {
      const int r = idx / kEdge, e = idx % kEdge, t = row0 + r;
      if (t < L.T) {
        float& g = dqkv[L.qkv(b, t, which, h) + c * kEdge + e];
        g = (accumulate ? g : 0.0f) + scale * patch[r * pitch + e];
      }
    }
    __syncwarp();  // the patch is read before the next fragment overwrites it
  }
}

// ---- forward ---------------------------------------------------------------------------

__host__ __device__ constexpr int forward_score_pitch(int D) {
  return score_pitch(D > kForwardKeys ? D : kForwardKeys);
}
constexpr int kForwardProbPitch = prob_pitch(kForwardKeys);

// Shared memory: Q [64][D + 8], K and V [64][D + 8] (bf16); a fp32 tile [64][max(64, D) + 4]
// for the scores and then p·V; the probabilities [64][72] (bf16).
template <int D>
constexpr std::size_t forward_smem() {
  return 3 * sizeof(bf16) * kRows * kHeadPitch<D> + sizeof(float) * kRows * forward_score_pitch(D) +
         sizeof(bf16) * kRows * kForwardProbPitch;
}

template <int D>
__global__ void __launch_bounds__(kThreads)
    forward_kernel(float* __restrict__ out, float* __restrict__ lse, const float* __restrict__ qkv,
                   Layout L, int qtiles, float scale) {
  constexpr int HP = kHeadPitch<D>, SP = forward_score_pitch(D), PP = kForwardProbPitch;
  constexpr int kPerLane = (D + kWarp - 1) / kWarp;  // output columns per lane and row
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* Qs = reinterpret_cast<bf16*>(smem);
  bf16* Ks = Qs + kRows * HP;
  bf16* Vs = Ks + kForwardKeys * HP;
  float* Ss = reinterpret_cast<float*>(Vs + kForwardKeys * HP);
  bf16* Ps = reinterpret_cast<bf16*>(Ss + kRows * SP);

  // The longest rows (the last query tiles) are launched first.
  const int tile = qtiles - 1 - static_cast<int>(blockIdx.x) % qtiles;
  const int bh = static_cast<int>(blockIdx.x) / qtiles;
  const int b = bh / L.H, h = bh % L.H;
  const int warp = static_cast<int>(threadIdx.x) / kWarp,
            lane = static_cast<int>(threadIdx.x) % kWarp;
  const int q0 = tile * kRows, nq = min(kRows, L.T - q0);
  const int row0 = q0 + warp * kEdge;  // the warp's first query
  float* Sw = Ss + warp * kEdge * SP;
  bf16* Pw = Ps + warp * kEdge * PP;

  stage<D>(Qs, qkv + L.qkv(b, q0, 0, h), L.qkv_stride(), nq, kRows);
  float m[kEdge], l[kEdge], o[kEdge][kPerLane];
#pragma unroll
  for (int r = 0; r < kEdge; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
#pragma unroll
    for (int c = 0; c < kPerLane; ++c) o[r][c] = 0.0f;
  }

  for (int k0 = 0; k0 < q0 + nq; k0 += kForwardKeys) {
    const int nk = min(kForwardKeys, L.T - k0);
    __syncthreads();  // the previous K, V are consumed (and Q is staged)
    stage<D>(Ks, qkv + L.qkv(b, k0, 1, h), L.qkv_stride(), nk, kForwardKeys);
    stage<D>(Vs, qkv + L.qkv(b, k0, 2, h), L.qkv_stride(), nk, kForwardKeys);
    __syncthreads();
    rows_times_rows<D>(Sw, SP, Qs + warp * kEdge * HP, Ks, kForwardKeys / kEdge);
    __syncwarp();
#pragma unroll
    for (int r = 0; r < kEdge; ++r) {
      const int t = row0 + r;
      float s[2], mx = -INFINITY;
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int j = lane + c * kWarp, key = k0 + j;
        s[c] = key <= t && key < L.T ? Sw[r * SP + j] * scale : -INFINITY;
        mx = fmaxf(mx, s[c]);
      }
      const float m_new = fmaxf(m[r], warp_max(mx));  // finite: key k0 <= t is visible
      const float corr = expf(m[r] - m_new);          // 0 on the first tile
      float sum = 0.0f;
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const bf16 p = __float2bfloat16_rn(s[c] == -INFINITY ? 0.0f : expf(s[c] - m_new));
        Pw[r * PP + lane + c * kWarp] = p;
        sum += __bfloat162float(p);
      }
      l[r] = l[r] * corr + warp_sum(sum);
      m[r] = m_new;
#pragma unroll
      for (int c = 0; c < kPerLane; ++c) o[r][c] *= corr;
    }
    __syncwarp();  // the scores are read and p is written: p·V may overwrite Sw
    // p·V one column block at a time (o already holds the running output in registers).
#pragma unroll
    for (int c = 0; c < D / kEdge; ++c) {
      FragC pv;
      wmma::fill_fragment(pv, 0.0f);
      accumulate_column<D>(pv, Pw, PP, Vs, kForwardKeys / kEdge, c);
      wmma::store_matrix_sync(Sw + c * kEdge, pv, SP, wmma::mem_row_major);
    }
    __syncwarp();
#pragma unroll
    for (int r = 0; r < kEdge; ++r)
#pragma unroll
      for (int c = 0; c < kPerLane; ++c) {
        const int e = lane + c * kWarp;
        if (e < D) o[r][c] += Sw[r * SP + e];
      }
  }
#pragma unroll
  for (int r = 0; r < kEdge; ++r) {
    const int t = row0 + r;
    if (t >= L.T) break;  // warp-uniform; later rows are beyond T too
    const float inv = 1.0f / l[r];
    float* dst = out + L.out(b, t, h);
#pragma unroll
    for (int c = 0; c < kPerLane; ++c) {
      const int e = lane + c * kWarp;
      if (e < D) dst[e] = o[r][c] * inv;
    }
    if (lse && lane == 0) lse[L.lse(b, h, t)] = m[r] + logf(l[r]);
  }
}

// ---- backward --------------------------------------------------------------------------

constexpr int kBackwardScorePitch = score_pitch(kBackwardTile);
constexpr int kBackwardProbPitch = prob_pitch(kBackwardTile);

// Shared memory of both backward kernels, in this order: the block's own 64 rows of two head
// tiles (dK/dV: K, V; dQ: Q, dout), the staged tile's 32 rows of two (dK/dV: Q, dout; dQ: K,
// V), two fp32 score tiles [64][36] (S and dP), two bf16 tiles [64][40] (p and dS), then 64
// floats each of lse and D. BackwardTiles carves it, so the two kernels cannot disagree.
template <int D>
constexpr std::size_t backward_smem() {
  return sizeof(bf16) * (2 * kRows + 2 * kBackwardTile) * kHeadPitch<D> +
         sizeof(float) * 2 * kRows * kBackwardScorePitch +
         sizeof(bf16) * 2 * kRows * kBackwardProbPitch + sizeof(float) * 2 * kRows;
}

template <int D>
struct BackwardTiles {
  bf16 *own0, *own1, *staged0, *staged1;
  float *S, *dP;
  bf16 *P, *dS;
  float *lse, *D_;
  __device__ explicit BackwardTiles(unsigned char* smem) {
    own0 = reinterpret_cast<bf16*>(smem);
    own1 = own0 + kRows * kHeadPitch<D>;
    staged0 = own1 + kRows * kHeadPitch<D>;
    staged1 = staged0 + kBackwardTile * kHeadPitch<D>;
    S = reinterpret_cast<float*>(staged1 + kBackwardTile * kHeadPitch<D>);
    dP = S + kRows * kBackwardScorePitch;
    P = reinterpret_cast<bf16*>(dP + kRows * kBackwardScorePitch);
    dS = P + kRows * kBackwardProbPitch;
    lse = reinterpret_cast<float*>(dS + kRows * kBackwardProbPitch);
    D_ = lse + kRows;
  }
};

// lse and D of rows row0 .. row0 + n - 1 into shared memory (zeros up to `rows`).
__device__ void stage_row_stats(float* lse_s, float* D_s, const float* lse, const float* D,
                                const Layout& L, int b, int h, int row0, int n, int rows) {
  const int i = static_cast<int>(threadIdx.x);
  if (i < rows) {
    lse_s[i] = i < n ? lse[L.lse(b, h, row0 + i)] : 0.0f;
    D_s[i] = i < n ? D[L.lse(b, h, row0 + i)] : 0.0f;
  }
}

template <int D>
__global__ void __launch_bounds__(kThreads)
    backward_dkv_kernel(float* __restrict__ dqkv, const float* __restrict__ dout,
                        const float* __restrict__ lse, const float* __restrict__ Dsum,
                        const float* __restrict__ qkv, Layout L, int ktiles, float scale,
                        bool accumulate) {
  constexpr int HP = kHeadPitch<D>, SP = kBackwardScorePitch, PP = kBackwardProbPitch;
  extern __shared__ __align__(128) unsigned char smem[];
  const BackwardTiles<D> s(smem);
  bf16 *Ks = s.own0, *Vs = s.own1, *Qs = s.staged0, *dOs = s.staged1;
  // The first key tiles see the most queries: they are launched first.
  const int tile = static_cast<int>(blockIdx.x) % ktiles;
  const int bh = static_cast<int>(blockIdx.x) / ktiles;
  const int b = bh / L.H, h = bh % L.H;
  const int warp = static_cast<int>(threadIdx.x) / kWarp,
            lane = static_cast<int>(threadIdx.x) % kWarp;
  const int k0 = tile * kRows, nk = min(kRows, L.T - k0);
  const int key0 = k0 + warp * kEdge;  // the warp's first key
  float *Sw = s.S + warp * kEdge * SP, *dPw = s.dP + warp * kEdge * SP;
  bf16 *Pw = s.P + warp * kEdge * PP, *dSw = s.dS + warp * kEdge * PP;

  stage<D>(Ks, qkv + L.qkv(b, k0, 1, h), L.qkv_stride(), nk, kRows);
  stage<D>(Vs, qkv + L.qkv(b, k0, 2, h), L.qkv_stride(), nk, kRows);
  FragC dk[D / kEdge], dv[D / kEdge];
#pragma unroll
  for (int c = 0; c < D / kEdge; ++c) {
    wmma::fill_fragment(dk[c], 0.0f);
    wmma::fill_fragment(dv[c], 0.0f);
  }

  // Queries before the block's first key see none of its keys.
  for (int t0 = k0; t0 < L.T; t0 += kBackwardTile) {
    const int nq = min(kBackwardTile, L.T - t0);
    __syncthreads();  // the previous query tile is consumed (and K, V are staged)
    stage<D>(Qs, qkv + L.qkv(b, t0, 0, h), L.qkv_stride(), nq, kBackwardTile);
    stage<D>(dOs, dout + L.out(b, t0, h), L.out_stride(), nq, kBackwardTile);
    stage_row_stats(s.lse, s.D_, lse, Dsum, L, b, h, t0, nq, kBackwardTile);
    __syncthreads();
    rows_times_rows<D>(Sw, SP, Ks + warp * kEdge * HP, Qs, kBackwardTile / kEdge);
    rows_times_rows<D>(dPw, SP, Vs + warp * kEdge * HP, dOs, kBackwardTile / kEdge);
    __syncwarp();
    const int t = t0 + lane;  // lane i: query t0 + i
#pragma unroll 4
    for (int r = 0; r < kEdge; ++r) {
      const int key = key0 + r;
      const bool seen = lane < nq && key <= t && key < L.T;
      const float p = seen ? expf(Sw[r * SP + lane] * scale - s.lse[lane]) : 0.0f;
      const float ds = seen ? p * (dPw[r * SP + lane] - s.D_[lane]) : 0.0f;
      Pw[r * PP + lane] = __float2bfloat16_rn(p);
      dSw[r * PP + lane] = __float2bfloat16_rn(ds);
    }
    __syncwarp();
    accumulate_times_rows<D>(dv, Pw, PP, dOs, kBackwardTile / kEdge);
    accumulate_times_rows<D>(dk, dSw, PP, Qs, kBackwardTile / kEdge);
  }
  add_rows<D>(dqkv, L, b, key0, 1, h, dk, scale, Sw, SP, accumulate);
  add_rows<D>(dqkv, L, b, key0, 2, h, dv, 1.0f, Sw, SP, accumulate);
}

template <int D>
__global__ void __launch_bounds__(kThreads)
    backward_dq_kernel(float* __restrict__ dqkv, const float* __restrict__ dout,
                       const float* __restrict__ lse, const float* __restrict__ Dsum,
                       const float* __restrict__ qkv, Layout L, int qtiles, float scale,
                       bool accumulate) {
  constexpr int HP = kHeadPitch<D>, SP = kBackwardScorePitch, PP = kBackwardProbPitch;
  extern __shared__ __align__(128) unsigned char smem[];
  const BackwardTiles<D> s(smem);
  bf16 *Qs = s.own0, *dOs = s.own1, *Ks = s.staged0, *Vs = s.staged1;
  const int tile = qtiles - 1 - static_cast<int>(blockIdx.x) % qtiles;  // longest rows first
  const int bh = static_cast<int>(blockIdx.x) / qtiles;
  const int b = bh / L.H, h = bh % L.H;
  const int warp = static_cast<int>(threadIdx.x) / kWarp,
            lane = static_cast<int>(threadIdx.x) % kWarp;
  const int q0 = tile * kRows, nq = min(kRows, L.T - q0);
  const int row0 = q0 + warp * kEdge;  // the warp's first query
  float *Sw = s.S + warp * kEdge * SP, *dPw = s.dP + warp * kEdge * SP;
  bf16* dSw = s.dS + warp * kEdge * PP;

  stage<D>(Qs, qkv + L.qkv(b, q0, 0, h), L.qkv_stride(), nq, kRows);
  stage<D>(dOs, dout + L.out(b, q0, h), L.out_stride(), nq, kRows);
  stage_row_stats(s.lse, s.D_, lse, Dsum, L, b, h, q0, nq, kRows);
  FragC dq[D / kEdge];
#pragma unroll
  for (int c = 0; c < D / kEdge; ++c) wmma::fill_fragment(dq[c], 0.0f);

  for (int k0 = 0; k0 < q0 + nq; k0 += kBackwardTile) {
    const int nk = min(kBackwardTile, L.T - k0);
    __syncthreads();  // the previous key tile is consumed (and Q, dout, lse, D are staged)
    stage<D>(Ks, qkv + L.qkv(b, k0, 1, h), L.qkv_stride(), nk, kBackwardTile);
    stage<D>(Vs, qkv + L.qkv(b, k0, 2, h), L.qkv_stride(), nk, kBackwardTile);
    __syncthreads();
    rows_times_rows<D>(Sw, SP, Qs + warp * kEdge * HP, Ks, kBackwardTile / kEdge);
    rows_times_rows<D>(dPw, SP, dOs + warp * kEdge * HP, Vs, kBackwardTile / kEdge);
    __syncwarp();
    const int key = k0 + lane;  // lane j: key k0 + j
#pragma unroll 4
    for (int r = 0; r < kEdge; ++r) {
      const int i = warp * kEdge + r, t = q0 + i;
      const bool seen = key <= t && key < L.T && t < L.T;
      const float p = seen ? expf(Sw[r * SP + lane] * scale - s.lse[i]) : 0.0f;
      const float ds = seen ? p * (dPw[r * SP + lane] - s.D_[i]) : 0.0f;
      dSw[r * PP + lane] = __float2bfloat16_rn(ds);
    }
    __syncwarp();
    accumulate_times_rows<D>(dq, dSw, PP, Ks, kBackwardTile / kEdge);
  }
  add_rows<D>(dqkv, L, b, row0, 0, h, dq, scale, Sw, SP, accumulate);
}

// Every head dimension the kernels are built for, as a compile-time constant for f.
template <class F>
void with_head_dim(int d, F&& f) {
  switch (d) {
    case 16: return f(std::integral_constant<int, 16>{});
    case 32: return f(std::integral_constant<int, 32>{});
    case 48: return f(std::integral_constant<int, 48>{});
    case 64: return f(std::integral_constant<int, 64>{});
    case 80: return f(std::integral_constant<int, 80>{});
    case 96: return f(std::integral_constant<int, 96>{});
    case 112: return f(std::integral_constant<int, 112>{});
    case 128: return f(std::integral_constant<int, 128>{});
    default: throw std::logic_error("attention_bf16: no kernel for d = " + std::to_string(d));
  }
}

// Every GPU we build for lets a block opt in to at least 99 KiB (sm_86, sm_89, sm_120; sm_80
// 163 KiB, sm_90 227 KiB), so no device check is needed.
constexpr std::size_t kMinOptInSmem = std::size_t{99} * 1024;
static_assert(forward_smem<kMaxHeadDim>() <= kMinOptInSmem);
static_assert(backward_smem<kMaxHeadDim>() <= kMinOptInSmem);

void check_sizes(int B, int T, int H, int d) {
  if (B < 0 || T < 0 || H < 0) throw std::invalid_argument("attention_bf16: need B, T, H >= 0");
  if (!attention_bf16_supports(d))
    throw std::invalid_argument("attention_bf16: heads must be a multiple of 16 wide, at most " +
                                std::to_string(kMaxHeadDim) + "; got d = " + std::to_string(d));
}

}  // namespace

bool attention_bf16_supports(int d) { return d > 0 && d <= kMaxHeadDim && d % kEdge == 0; }

void attention_forward_bf16(float* out, float* lse, const float* qkv, int B, int T, int H, int d) {
  check_sizes(B, T, H, d);
  if (B == 0 || T == 0 || H == 0) return;
  const Layout L{T, H, d};
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const int qtiles = detail::ceil_div(T, kRows);
  with_head_dim(d, [&](auto dim) {
    constexpr int D = decltype(dim)::value;
    constexpr std::size_t smem = forward_smem<D>();
    allow_smem(forward_kernel<D>, smem);
    forward_kernel<D><<<blocks(B, H, qtiles), kThreads, smem>>>(out, lse, qkv, L, qtiles, scale);
    MB_CUDA_CHECK_LAUNCH();
  });
}

void attention_backward_bf16(float* dqkv, const float* dout, const float* out, const float* lse,
                             const float* qkv, int B, int T, int H, int d, bool accumulate_dqkv) {
  check_sizes(B, T, H, d);
  if (B == 0 || T == 0 || H == 0) return;
  const Layout L{T, H, d};
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const RowDots Dsum(dout, out, L, B);
  const int tiles = detail::ceil_div(T, kRows);
  with_head_dim(d, [&](auto dim) {
    constexpr int D = decltype(dim)::value;
    constexpr std::size_t smem = backward_smem<D>();
    allow_smem(backward_dkv_kernel<D>, smem);
    allow_smem(backward_dq_kernel<D>, smem);
    const float* D_rows = Dsum.values.get();
    backward_dkv_kernel<D><<<blocks(B, H, tiles), kThreads, smem>>>(dqkv, dout, lse, D_rows, qkv, L,
                                                                    tiles, scale, accumulate_dqkv);
    MB_CUDA_CHECK_LAUNCH();
    backward_dq_kernel<D><<<blocks(B, H, tiles), kThreads, smem>>>(dqkv, dout, lse, D_rows, qkv, L,
                                                                   tiles, scale, accumulate_dqkv);
    MB_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace mb::kernels::cuda
