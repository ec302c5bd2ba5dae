// Matrix product of a linear layer on the GPU through cuBLASLt (see matmul.cuh).
//
// Row-major buffers seen column-major: cuBLASLt is column-major, and a row-major [R, C]
// buffer is, unchanged, the column-major C × R matrix (its transpose) with leading dimension
// C. Every product is therefore computed transposed, D = Xᵀ, with no copy of any operand:
//
//   forward      outᵀ[N,M]     = weight[N,K] · inpᵀ[K,M]          (+ bias[N] down the rows)
//                A = weight buffer, K × N, ld K, op T;  B = inp buffer,  K × M, ld K, op N
//                D = out buffer,    N × M, ld N;  beta 0; CUBLASLT_EPILOGUE_BIAS with bias
//                (a vector over the m = N rows of D, broadcast along the M columns) when the
//                bias is 16-byte aligned and cuBLASLt offers an algorithm with that epilogue,
//                else a separate add kernel afterwards.
//   grad input   dinpᵀ[K,M]   += weightᵀ[K,N] · doutᵀ[N,M]
//                A = weight buffer, K × N, ld K, op N;  B = dout buffer, N × M, ld N, op N
//                C = D = dinp buffer, K × M, ld K; beta 1 (accumulate in place), or beta 0
//                (the model's input gradients, written over whatever the buffer held).
//   grad weight  dweightᵀ[K,N] += inpᵀ[K,M] · dout[M,N]
//                A = inp buffer,    K × M, ld K, op N;  B = dout buffer, N × M, ld N, op T
//                C = D = dweight buffer, K × N, ld K; beta 1.
//
// Compute type CUBLAS_COMPUTE_32F with CUDA_R_32F scale and matrices: true fp32 FMA math, no
// TF32 (that would need CUBLAS_COMPUTE_32F_FAST_TF32). The algorithm comes from
// cublasLtMatmulAlgoGetHeuristic, asked once per (device, operand type, product shape,
// operand alignment) and cached, with a fixed 32 MiB workspace per device, so a given call
// always runs the same algorithm and (one stream, cuBLAS's guarantee) gives bit-identical
// results run to run. dbias is a deterministic column sum (colsum.cuh), not a product.
//
// The bf16 pair runs the same three products with A and B of type CUDA_R_16BF (C, D, scale
// and compute type unchanged: CUDA_R_32F, CUBLAS_COMPUTE_32F, the "bf16 in, fp32 out"
// combination of cublasLtMatmul's type table). Its A and B operands (Bf16Operand) are the
// caller's bf16 copies where there are some (a weight's, an input saved in bf16) and their rows
// are 16-byte aligned, else the caller's fp32 buffers rounded by to_bf16 (bf16.cuh), or copies
// padded by pad_bf16, into scratch whose rows are padded to a multiple of 8 elements and whose
// start is 256-byte aligned; the leading dimensions in the table above become those of the
// operand as handed over. C and D are the caller's fp32 buffers as before. The bias vector has the type of D (CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE defaults
// to Dtype, see cublasLt.h), so it is fp32 in both pairs, and is set explicitly.
#include "cuda/matmul.cuh"

#include "cuda/activation.cuh"
#include "cuda/bf16.cuh"
#include "cuda/colsum.cuh"
#include "cuda/common.cuh"
#include "cuda/residual.cuh"

#include <cublasLt.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace mb::kernels::cuda {
namespace {

void check_lt(cublasStatus_t status, const char* expr, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cuBLASLt error at ") + file + ":" + std::to_string(line) +
                             ": " + expr + ": " + cublasGetStatusString(status));
}

#define MB_CUBLASLT_CHECK(expr) check_lt((expr), #expr, __FILE__, __LINE__)

constexpr std::size_t kWorkspaceBytes = kMatmulWorkspaceBytes;

struct DeviceLt {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
};

// The cuBLASLt handle and workspace of the current device, created on first use and never
// destroyed (as cublas_handle(): a static destructor may run after the runtime is gone).
// One workspace per device is safe because every call runs on the default stream, in order.
DeviceLt device_lt(int device) {
  static std::mutex mutex;
  static std::vector<DeviceLt> all;
  const std::lock_guard<std::mutex> lock(mutex);
  if (all.size() <= static_cast<std::size_t>(device))
    all.resize(static_cast<std::size_t>(device) + 1);
  DeviceLt& lt = all[static_cast<std::size_t>(device)];
  if (!lt.handle) {
    void* ws = nullptr;
    MB_CUDA_CHECK(cudaMalloc(&ws, kWorkspaceBytes));
    cublasLtHandle_t h = nullptr;
    const cublasStatus_t st = cublasLtCreate(&h);
    if (st != CUBLAS_STATUS_SUCCESS) {
      static_cast<void>(cudaFree(ws));
      MB_CUBLASLT_CHECK(st);
    }
    lt.handle = h;
    lt.workspace = ws;
  }
  return lt;
}

// Largest power of two (at most 256) dividing the address: what the chosen algorithm may
// assume about a buffer (cuBLASLt's heuristics assume 256 unless told otherwise, and an
// operand that starts inside a buffer may be aligned to 4 bytes only).
std::uint32_t alignment(const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  if (a == 0) return 256;
  const std::uintptr_t low = a & (~a + 1);
  return static_cast<std::uint32_t>(low > 256 ? 256 : low);
}

// Column-major D[m,n] = op(A) · op(B) (+ bias[m] per row) (+ beta · C), C and D the same
// fp32 buffer. A is stored (opA == N ? m × k : k × m) with leading dimension lda; B likewise;
// both of type `type` (CUDA_R_32F or CUDA_R_16BF).
struct Gemm {
  cudaDataType_t type;
  cublasOperation_t opA, opB;
  int m, n, k;
  std::int64_t lda, ldb, ldc;
  const void* A;
  const void* B;
  float* C;
  const float* bias;  // fp32, m entries; null: none. Requires ldc == m.
  float beta;
};

template <class T, cublasStatus_t (*Destroy)(T)>
struct Owned {
  T h = nullptr;
  Owned() = default;
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  ~Owned() {
    if (h) static_cast<void>(Destroy(h));
  }
};
using MatmulDesc = Owned<cublasLtMatmulDesc_t, cublasLtMatmulDescDestroy>;
using Layout = Owned<cublasLtMatrixLayout_t, cublasLtMatrixLayoutDestroy>;
using Preference = Owned<cublasLtMatmulPreference_t, cublasLtMatmulPreferenceDestroy>;

// What the choice of algorithm depends on. The bias pointer's alignment is part of it: the
// heuristic reads the pointer to learn it (cublasLt.h, CUBLASLT_MATMUL_DESC_BIAS_POINTER).
struct AlgoKey {
  int device;
  int type;
  int opA, opB, m, n, k;
  std::int64_t lda, ldb, ldc;
  bool bias;
  std::uint32_t alignA, alignB, alignC, alignBias;
  bool operator<(const AlgoKey& o) const {
    return std::tie(device, type, opA, opB, m, n, k, lda, ldb, ldc, bias, alignA, alignB, alignC,
                    alignBias) < std::tie(o.device, o.type, o.opA, o.opB, o.m, o.n, o.k, o.lda,
                                          o.ldb, o.ldc, o.bias, o.alignA, o.alignB, o.alignC,
                                          o.alignBias);
  }
};

// The cached decision for a key: the algorithm, and whether it runs with the bias epilogue
// (false when no bias was asked for, or when it was but is added by add_bias_kernel).
struct AlgoChoice {
  cublasLtMatmulAlgo_t algo;
  bool fused_bias;
  // No algorithm takes this output where it lies (some bf16 kernels want C and D 16-byte
  // aligned): the product runs on an aligned copy of the output instead (run_staged_output).
  bool stage_output;
};

// Same bound and reason as the CPU twin's primitive cache.
constexpr std::size_t kMaxCached = 512;

void make_layout(Layout& l, cudaDataType_t type, int rows, int cols, std::int64_t ld) {
  MB_CUBLASLT_CHECK(cublasLtMatrixLayoutCreate(&l.h, type, static_cast<std::uint64_t>(rows),
                                               static_cast<std::uint64_t>(cols), ld));
}

const char* type_name(cudaDataType_t type) { return type == CUDA_R_16BF ? "bf16" : "fp32"; }

// The operation descriptor of g, with the bias epilogue when fuse_bias. Descriptors are
// created per call (host-only and cheap), so concurrent callers never share a mutable one.
void make_desc(MatmulDesc& desc, const Gemm& g, bool fuse_bias) {
  MB_CUBLASLT_CHECK(cublasLtMatmulDescCreate(&desc.h, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  MB_CUBLASLT_CHECK(
      cublasLtMatmulDescSetAttribute(desc.h, CUBLASLT_MATMUL_DESC_TRANSA, &g.opA, sizeof(g.opA)));
  MB_CUBLASLT_CHECK(
      cublasLtMatmulDescSetAttribute(desc.h, CUBLASLT_MATMUL_DESC_TRANSB, &g.opB, sizeof(g.opB)));
  if (fuse_bias) {
    const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    MB_CUBLASLT_CHECK(
        cublasLtMatmulDescSetAttribute(desc.h, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
    const void* bias = g.bias;
    MB_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(desc.h, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                     &bias, sizeof(bias)));
    // The default already (the type of D); stated so that it does not follow A and B.
    const auto bias_type = static_cast<std::int32_t>(CUDA_R_32F);
    MB_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(desc.h, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                                                     &bias_type, sizeof(bias_type)));
  }
}

// The best algorithm cuBLASLt's heuristic offers for this descriptor, or false when it offers
// none (CUBLAS_STATUS_NOT_SUPPORTED or no result).
bool heuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a,
               cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c, const AlgoKey& key,
               cublasLtMatmulAlgo_t& algo) {
  Preference pref;
  MB_CUBLASLT_CHECK(cublasLtMatmulPreferenceCreate(&pref.h));
  const std::uint64_t ws = kWorkspaceBytes;
  MB_CUBLASLT_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref.h, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  MB_CUBLASLT_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref.h, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &key.alignA, sizeof(key.alignA)));
  MB_CUBLASLT_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref.h, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &key.alignB, sizeof(key.alignB)));
  MB_CUBLASLT_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref.h, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &key.alignC, sizeof(key.alignC)));
  MB_CUBLASLT_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref.h, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &key.alignC, sizeof(key.alignC)));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t st =
      cublasLtMatmulAlgoGetHeuristic(handle, desc, a, b, c, c, pref.h, 1, &result, &found);
  if (st == CUBLAS_STATUS_NOT_SUPPORTED) return false;
  MB_CUBLASLT_CHECK(st);
  if (found < 1) return false;
  algo = result.algo;
  return true;
}

// out[i, j] += bias[j] (a bias that cuBLASLt is not given to fuse).
__global__ void add_bias_kernel(float* __restrict__ out, const float* __restrict__ bias,
                                std::size_t n, int N) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride)
    out[i] += bias[i % static_cast<std::size_t>(N)];
}

constexpr unsigned kStagedAlign = 256;

void run(const Gemm& g);

// g with its output C (= D, m × n, leading dimension ldc) moved to aligned scratch: C is copied
// there first (what a product with beta = 1 accumulates onto, and whatever lies between
// columns when ldc > m), the product runs there, and the whole span is copied back. The
// result is what an algorithm taking C where it lies would give: the same operation on the
// same values, only at another address.
void run_staged_output(const Gemm& g) {
  const std::size_t elems = static_cast<std::size_t>(g.ldc) * static_cast<std::size_t>(g.n);
  const std::size_t bytes = elems * sizeof(float);
  detail::Scratch<float> buf(elems + kStagedAlign / sizeof(float));
  const auto addr = reinterpret_cast<std::uintptr_t>(buf.get());
  auto* staged = reinterpret_cast<float*>((addr + kStagedAlign - 1) / kStagedAlign * kStagedAlign);
  MB_CUDA_CHECK(cudaMemcpyAsync(staged, g.C, bytes, cudaMemcpyDeviceToDevice, 0));
  Gemm aligned = g;
  aligned.C = staged;
  run(aligned);
  MB_CUDA_CHECK(cudaMemcpyAsync(g.C, staged, bytes, cudaMemcpyDeviceToDevice, 0));
}

// Runs g on the default stream. The bias is fused into the product (epilogue) when it is
// 16-byte aligned (cuBLASLt's alignment hints cover A, B, C and D only) and the heuristic has
// an algorithm with the epilogue; otherwise add_bias_kernel adds it to the finished product.
// Either way it is added once, in fp32, and the choice is cached with the algorithm, so a
// given call always takes the same path and gives the same bits.
void run(const Gemm& g) {
  if (g.bias && g.ldc != g.m) throw std::logic_error("matmul: a bias needs ldc == m");
  int device = 0;
  MB_CUDA_CHECK(cudaGetDevice(&device));
  const DeviceLt lt = device_lt(device);

  Layout a, b, c;
  if (g.opA == CUBLAS_OP_N)
    make_layout(a, g.type, g.m, g.k, g.lda);
  else
    make_layout(a, g.type, g.k, g.m, g.lda);
  if (g.opB == CUBLAS_OP_N)
    make_layout(b, g.type, g.k, g.n, g.ldb);
  else
    make_layout(b, g.type, g.n, g.k, g.ldb);
  make_layout(c, CUDA_R_32F, g.m, g.n, g.ldc);

  const AlgoKey key{device,
                    static_cast<int>(g.type),
                    static_cast<int>(g.opA),
                    static_cast<int>(g.opB),
                    g.m,
                    g.n,
                    g.k,
                    g.lda,
                    g.ldb,
                    g.ldc,
                    g.bias != nullptr,
                    alignment(g.A),
                    alignment(g.B),
                    alignment(g.C),
                    g.bias ? alignment(g.bias) : 0u};
  MatmulDesc desc;
  AlgoChoice choice{};
  {
    static std::mutex mutex;
    static std::map<AlgoKey, AlgoChoice> cache;
    const std::lock_guard<std::mutex> lock(mutex);
    if (auto it = cache.find(key); it != cache.end()) {
      choice = it->second;
      make_desc(desc, g, choice.fused_bias);
    } else {
      bool found = false;
      if (g.bias && key.alignBias >= 16) {
        make_desc(desc, g, true);
        found = heuristic(lt.handle, desc.h, a.h, b.h, c.h, key, choice.algo);
        choice.fused_bias = found;
      }
      if (!found) {
        MatmulDesc plain;
        make_desc(plain, g, false);
        choice.fused_bias = false;
        if (heuristic(lt.handle, plain.h, a.h, b.h, c.h, key, choice.algo))
          std::swap(desc.h, plain.h);
        else if (key.alignC < kStagedAlign)
          choice.stage_output = true;
        else
          throw std::runtime_error(std::string("matmul: cuBLASLt has no ") + type_name(g.type) +
                                   " algorithm for m = " + std::to_string(g.m) +
                                   ", n = " + std::to_string(g.n) + ", k = " + std::to_string(g.k));
      }
      if (cache.size() >= kMaxCached) cache.clear();
      cache.emplace(key, choice);
    }
  }
  if (choice.stage_output) {
    run_staged_output(g);
    return;
  }

  const float alpha = 1.0f;
  MB_CUBLASLT_CHECK(cublasLtMatmul(lt.handle, desc.h, &alpha, g.A, a.h, g.B, b.h, &g.beta, g.C, c.h,
                                   g.C, c.h, &choice.algo, lt.workspace, kWorkspaceBytes, 0));
  if (g.bias && !choice.fused_bias) {
    const std::size_t n = static_cast<std::size_t>(g.m) * static_cast<std::size_t>(g.n);
    add_bias_kernel<<<detail::grid_size(n), detail::kBlock>>>(g.C, g.bias, n, g.m);
    MB_CUDA_CHECK_LAUNCH();
  }
}

void check_sizes(int M, int K, int N) {
  if (M < 0 || K < 0 || N < 0) throw std::invalid_argument("matmul: negative dimension");
}

// K = 0: the empty product, out = bias (or 0), as the CPU twin.
__global__ void fill_bias_kernel(float* out, const float* bias, std::size_t M, int N) {
  const std::size_t n = M * static_cast<std::size_t>(N);
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride)
    out[i] = bias ? bias[i % static_cast<std::size_t>(N)] : 0.0f;
}

// Pass 1 of the deterministic dbias (colsum.cuh): thread (column c, task t) adds rows
// begin(t)..end(t) of column c of dout in order into partial[t * N + c].
__global__ void bias_partials_kernel(float* __restrict__ partial, const float* __restrict__ dout,
                                     int M, int N, detail::RowSplit split) {
  const int c =
      static_cast<int>(blockIdx.x) * detail::kColsPerBlock + static_cast<int>(threadIdx.x);
  const int t =
      static_cast<int>(blockIdx.y) * detail::kTasksPerBlock + static_cast<int>(threadIdx.y);
  if (c >= N || t >= split.tasks) return;
  float acc = 0.0f;
  for (int i = split.begin(t), e = split.end(t, M); i < e; ++i)
    acc += dout[static_cast<std::size_t>(i) * N + c];
  partial[static_cast<std::size_t>(t) * N + c] = acc;
}

// out = bias (or 0) for K = 0, the empty product, as the CPU twin. M, N > 0.
void fill_bias(float* out, const float* bias, int M, int N) {
  const std::size_t n = static_cast<std::size_t>(M) * N;
  fill_bias_kernel<<<detail::grid_size(n), detail::kBlock>>>(out, bias, static_cast<std::size_t>(M),
                                                             N);
  MB_CUDA_CHECK_LAUNCH();
}

// dbias[N] += column sums of dout[M, N], deterministic (colsum.cuh). M, N > 0.
void bias_grad(float* dbias, const float* dout, int M, int N) {
  const detail::RowSplit split = detail::row_split(M);
  detail::Scratch<float> partial(static_cast<std::size_t>(split.tasks) * N);
  bias_partials_kernel<<<detail::colsum_grid(N, split.tasks), detail::colsum_block()>>>(
      partial.get(), dout, M, N, split);
  MB_CUDA_CHECK_LAUNCH();
  detail::add_column_partials(dbias, partial.get(), split.tasks, static_cast<std::size_t>(N), N);
}

// A bf16 operand of rows × cols as cuBLASLt gets it: the caller's bf16 copy where its rows
// can be handed over as they are (ld = cols a multiple of kBf16LdMultiple and the start
// 16-byte aligned, so that every row is), else staged in scratch with rows padded to
// ld = bf16_ld(cols) and the start aligned to 256 bytes: padded from the copy (pad_bf16), or
// rounded from the fp32 values (to_bf16) where there is no copy. The staged alignment is fixed
// rather than whatever the pool returns, so the algorithm cache sees the same key on every
// call of a shape. Scratch is freed (stream-ordered) when the operand goes out of scope, after
// the products queued on the default stream that read it.
class Bf16Operand {
 public:
  static constexpr std::size_t kAlign = 256;
  Bf16Operand(const float* values, const std::uint16_t* copy, int rows, int cols) {
    if (!values && !copy)  // the CPU twin's check and words (cpu/matmul.cpp)
      throw std::invalid_argument(
          "matmul bf16: an operand is missing (its fp32 values and its bf16 copy are both null)");
    const auto r = static_cast<std::size_t>(rows), c = static_cast<std::size_t>(cols);
    if (copy && c % kBf16LdMultiple == 0 && reinterpret_cast<std::uintptr_t>(copy) % 16 == 0) {
      data_ = copy;
      ld_ = cols;
      return;
    }
    ld_ = static_cast<std::int64_t>(bf16_ld(c));
    buf_.emplace(r * static_cast<std::size_t>(ld_) + kAlign / sizeof(std::uint16_t));
    const auto addr = reinterpret_cast<std::uintptr_t>(buf_->get());
    auto* staged = reinterpret_cast<std::uint16_t*>((addr + kAlign - 1) / kAlign * kAlign);
    if (copy)
      pad_bf16(staged, copy, r, c, static_cast<std::size_t>(ld_));
    else
      to_bf16(staged, values, r, c, static_cast<std::size_t>(ld_));
    data_ = staged;
  }
  const void* get() const { return data_; }
  std::int64_t ld() const { return ld_; }

 private:
  std::optional<detail::Scratch<std::uint16_t>> buf_;  // none when the copy is used in place
  const void* data_ = nullptr;
  std::int64_t ld_ = 0;
};

// The forward calls cuBLASLt is not needed for: M or N is 0 (nothing to write), or K is 0 (an
// empty contraction: out is the bias, or 0). Returns true when it has handled the call.
bool forward_without_product(float* out, const float* bias, int M, int K, int N) {
  check_sizes(M, K, N);
  if (M == 0 || N == 0) return true;
  if (K > 0) return false;
  fill_bias(out, bias, M, N);
  return true;
}

}  // namespace

void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int M,
                    int K, int N) {
  if (forward_without_product(out, bias, M, K, N)) return;
  run(Gemm{CUDA_R_32F, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, K, K, N, weight, inp, out, bias, 0.0f});
}

void matmul_few_rows_forward(float* out, const float* inp, const float* weight, const float* bias,
                             int M, int K, int N) {
  matmul_forward(out, inp, weight, bias, M, K, N);
}

void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int M, int K, int N, bool accumulate_dinp) {
  check_sizes(M, K, N);
  if (M == 0 || N == 0) return;  // every gradient term is an empty sum
  if (K > 0) {
    if (dinp)
      run(Gemm{CUDA_R_32F, CUBLAS_OP_N, CUBLAS_OP_N, K, M, N, K, N, K, weight, dout, dinp, nullptr,
               accumulate_dinp ? 1.0f : 0.0f});
    if (dweight)
      run(Gemm{CUDA_R_32F, CUBLAS_OP_N, CUBLAS_OP_T, K, N, M, K, N, K, inp, dout, dweight, nullptr,
               1.0f});
  }
  if (dbias) bias_grad(dbias, dout, M, N);
}

// The same products on staged bf16 copies: leading dimensions of A and B are the staged ones
// (bf16_ld(K) for weight and inp, bf16_ld(N) for dout), those of C and D the caller's.
void matmul_forward_bf16(float* out, const float* inp, const std::uint16_t* inp_bf16,
                         const float* weight, const std::uint16_t* weight_bf16, const float* bias,
                         int M, int K, int N) {
  if (forward_without_product(out, bias, M, K, N)) return;
  const Bf16Operand w(weight, weight_bf16, N, K), x(inp, inp_bf16, M, K);
  run(Gemm{CUDA_R_16BF, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, w.ld(), x.ld(), N, w.get(), x.get(), out,
           bias, 0.0f});
}

void matmul_backward_bf16(float* dinp, float* dweight, float* dbias, const float* dout,
                          const float* inp, const std::uint16_t* inp_bf16, const float* weight,
                          const std::uint16_t* weight_bf16, int M, int K, int N,
                          bool accumulate_dinp) {
  check_sizes(M, K, N);
  if (M == 0 || N == 0) return;  // every gradient term is an empty sum
  if (K > 0 && (dinp || dweight)) {
    const Bf16Operand g(dout, nullptr, M, N);
    if (dinp) {
      const Bf16Operand w(weight, weight_bf16, N, K);
      run(Gemm{CUDA_R_16BF, CUBLAS_OP_N, CUBLAS_OP_N, K, M, N, w.ld(), g.ld(), K, w.get(), g.get(),
               dinp, nullptr, accumulate_dinp ? 1.0f : 0.0f});
    }
    if (dweight) {
      const Bf16Operand x(inp, inp_bf16, M, K);
      run(Gemm{CUDA_R_16BF, CUBLAS_OP_N, CUBLAS_OP_T, K, N, M, x.ld(), g.ld(), K, x.get(), g.get(),
               dweight, nullptr, 1.0f});
    }
  }
  if (dbias) bias_grad(dbias, dout, M, N);  // from the fp32 dout, as the CPU twin
}

void matmul_bias_relu_forward(float* out, const float* inp, const float* weight, const float* bias,
                              int M, int K, int N) {
  matmul_forward(out, inp, weight, nullptr, M, K, N);
  bias_relu_forward(out, out, bias, M, N);
}

void matmul_bias_relu_forward_bf16(float* out, const float* inp, const std::uint16_t* inp_bf16,
                                   const float* weight, const std::uint16_t* weight_bf16,
                                   const float* bias, int M, int K, int N) {
  matmul_forward_bf16(out, inp, inp_bf16, weight, weight_bf16, nullptr, M, K, N);
  bias_relu_forward(out, out, bias, M, N);
}

namespace {

// out[M,N] += what forward(product) writes into an M x N scratch buffer.
template <class Forward>
void add_product(float* out, int M, int K, int N, Forward forward) {
  check_sizes(M, K, N);
  const std::size_t n = static_cast<std::size_t>(M) * static_cast<std::size_t>(N);
  if (n == 0) return;
  detail::Scratch<float> product(n);
  forward(product.get());
  residual_forward(out, out, product.get(), n);
}

}  // namespace

void matmul_residual_forward(float* out, const float* inp, const float* weight, const float* bias,
                             int M, int K, int N) {
  add_product(out, M, K, N, [&](float* p) { matmul_forward(p, inp, weight, bias, M, K, N); });
}

void matmul_residual_forward_bf16(float* out, const float* inp, const std::uint16_t* inp_bf16,
                                  const float* weight, const std::uint16_t* weight_bf16,
                                  const float* bias, int M, int K, int N) {
  add_product(out, M, K, N, [&](float* p) {
    matmul_forward_bf16(p, inp, inp_bf16, weight, weight_bf16, bias, M, K, N);
  });
}

}  // namespace mb::kernels::cuda
