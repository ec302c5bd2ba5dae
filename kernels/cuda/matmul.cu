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
//                bias is 16-byte aligned, else a separate add kernel afterwards.
//   grad input   dinpᵀ[K,M]   += weightᵀ[K,N] · doutᵀ[N,M]
//                A = weight buffer, K × N, ld K, op N;  B = dout buffer, N × M, ld N, op N
//                C = D = dinp buffer, K × M, ld K; beta 1 (accumulate in place).
//   grad weight  dweightᵀ[K,N] += inpᵀ[K,M] · dout[M,N]
//                A = inp buffer,    K × M, ld K, op N;  B = dout buffer, N × M, ld N, op T
//                C = D = dweight buffer, K × N, ld K; beta 1.
//
// Compute type CUBLAS_COMPUTE_32F with CUDA_R_32F scale and matrices: true fp32 FMA math, no
// TF32 (that would need CUBLAS_COMPUTE_32F_FAST_TF32). The algorithm comes from
// cublasLtMatmulAlgoGetHeuristic, asked once per (device, product shape, operand alignment)
// and cached, with a fixed 32 MiB workspace per device, so a given call always runs the same
// algorithm and (one stream, cuBLAS's guarantee) gives bit-identical results run to run.
// dbias is a deterministic column sum (colsum.cuh), not a product.
#include "cuda/matmul.cuh"

#include "cuda/colsum.cuh"
#include "cuda/common.cuh"

#include <cublasLt.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace mb::kernels::cuda {
namespace {

void check_lt(cublasStatus_t status, const char* expr, const char* file, int line) {
    if (status != CUBLAS_STATUS_SUCCESS)
        throw std::runtime_error(std::string("cuBLASLt error at ") + file + ":" +
                                 std::to_string(line) + ": " + expr + ": " +
                                 cublasGetStatusString(status));
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
// buffer. A is stored (opA == N ? m × k : k × m) with leading dimension lda; B likewise.
struct Gemm {
    cublasOperation_t opA, opB;
    int m, n, k;
    int lda, ldb, ldc;
    const float* A;
    const float* B;
    float* C;
    const float* bias;  // null: no epilogue
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

struct AlgoKey {
    int device;
    int opA, opB, m, n, k, lda, ldb, ldc;
    bool bias;
    std::uint32_t alignA, alignB, alignC;
    bool operator<(const AlgoKey& o) const {
        return std::tie(device, opA, opB, m, n, k, lda, ldb, ldc, bias, alignA, alignB, alignC) <
               std::tie(o.device, o.opA, o.opB, o.m, o.n, o.k, o.lda, o.ldb, o.ldc, o.bias,
                        o.alignA, o.alignB, o.alignC);
    }
};

// Same bound and reason as the CPU twin's primitive cache.
constexpr std::size_t kMaxCached = 512;

void make_layout(Layout& l, int rows, int cols, int ld) {
    MB_CUBLASLT_CHECK(cublasLtMatrixLayoutCreate(&l.h, CUDA_R_32F, static_cast<std::uint64_t>(rows),
                                                 static_cast<std::uint64_t>(cols), ld));
}

void run(const Gemm& g) {
    int device = 0;
    MB_CUDA_CHECK(cudaGetDevice(&device));
    const DeviceLt lt = device_lt(device);

    // Descriptors are created per call (host-only and cheap), so concurrent callers never
    // share a mutable one; only the algorithm, the costly heuristic query, is cached.
    MatmulDesc desc;
    MB_CUBLASLT_CHECK(cublasLtMatmulDescCreate(&desc.h, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    MB_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(desc.h, CUBLASLT_MATMUL_DESC_TRANSA, &g.opA,
                                                     sizeof(g.opA)));
    MB_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(desc.h, CUBLASLT_MATMUL_DESC_TRANSB, &g.opB,
                                                     sizeof(g.opB)));
    if (g.bias) {
        const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
        MB_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(desc.h, CUBLASLT_MATMUL_DESC_EPILOGUE,
                                                         &epi, sizeof(epi)));
        const void* bias = g.bias;
        MB_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(desc.h, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                         &bias, sizeof(bias)));
    }
    Layout a, b, c;
    if (g.opA == CUBLAS_OP_N) make_layout(a, g.m, g.k, g.lda); else make_layout(a, g.k, g.m, g.lda);
    if (g.opB == CUBLAS_OP_N) make_layout(b, g.k, g.n, g.ldb); else make_layout(b, g.n, g.k, g.ldb);
    make_layout(c, g.m, g.n, g.ldc);

    const AlgoKey key{device, static_cast<int>(g.opA), static_cast<int>(g.opB), g.m, g.n, g.k,
                      g.lda, g.ldb, g.ldc, g.bias != nullptr, alignment(g.A), alignment(g.B),
                      alignment(g.C)};
    cublasLtMatmulAlgo_t algo{};
    {
        static std::mutex mutex;
        static std::map<AlgoKey, cublasLtMatmulAlgo_t> cache;
        const std::lock_guard<std::mutex> lock(mutex);
        if (auto it = cache.find(key); it != cache.end()) {
            algo = it->second;
        } else {
            Preference pref;
            MB_CUBLASLT_CHECK(cublasLtMatmulPreferenceCreate(&pref.h));
            const std::uint64_t ws = kWorkspaceBytes;
            MB_CUBLASLT_CHECK(cublasLtMatmulPreferenceSetAttribute(
                pref.h, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
            MB_CUBLASLT_CHECK(cublasLtMatmulPreferenceSetAttribute(
                pref.h, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &key.alignA,
                sizeof(key.alignA)));
            MB_CUBLASLT_CHECK(cublasLtMatmulPreferenceSetAttribute(
                pref.h, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &key.alignB,
                sizeof(key.alignB)));
            MB_CUBLASLT_CHECK(cublasLtMatmulPreferenceSetAttribute(
                pref.h, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &key.alignC,
                sizeof(key.alignC)));
            MB_CUBLASLT_CHECK(cublasLtMatmulPreferenceSetAttribute(
                pref.h, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &key.alignC,
                sizeof(key.alignC)));
            cublasLtMatmulHeuristicResult_t result{};
            int found = 0;
            MB_CUBLASLT_CHECK(cublasLtMatmulAlgoGetHeuristic(lt.handle, desc.h, a.h, b.h, c.h,
                                                             c.h, pref.h, 1, &result, &found));
            if (found < 1)
                throw std::runtime_error("matmul: cuBLASLt has no fp32 algorithm for m = " +
                                         std::to_string(g.m) + ", n = " + std::to_string(g.n) +
                                         ", k = " + std::to_string(g.k));
            if (cache.size() >= kMaxCached) cache.clear();
            cache.emplace(key, result.algo);
            algo = result.algo;
        }
    }

    const float alpha = 1.0f;
    MB_CUBLASLT_CHECK(cublasLtMatmul(lt.handle, desc.h, &alpha, g.A, a.h, g.B, b.h, &g.beta, g.C,
                                     c.h, g.C, c.h, &algo, lt.workspace, kWorkspaceBytes, 0));
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

// out[i, j] += bias[j] (a bias that cuBLASLt is not given to fuse).
__global__ void add_bias_kernel(float* __restrict__ out, const float* __restrict__ bias,
                                std::size_t n, int N) {
    const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
    for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += stride)
        out[i] += bias[i % static_cast<std::size_t>(N)];
}

// Pass 1 of the deterministic dbias (colsum.cuh): thread (column c, task t) adds rows
// begin(t)..end(t) of column c of dout in order into partial[t * N + c].
__global__ void bias_partials_kernel(float* __restrict__ partial, const float* __restrict__ dout,
                                     int M, int N, detail::RowSplit split) {
    const int c = static_cast<int>(blockIdx.x) * detail::kColsPerBlock + static_cast<int>(threadIdx.x);
    const int t = static_cast<int>(blockIdx.y) * detail::kTasksPerBlock + static_cast<int>(threadIdx.y);
    if (c >= N || t >= split.tasks) return;
    float acc = 0.0f;
    for (int i = split.begin(t), e = split.end(t, M); i < e; ++i)
        acc += dout[static_cast<std::size_t>(i) * N + c];
    partial[static_cast<std::size_t>(t) * N + c] = acc;
}

}  // namespace

void matmul_forward(float* out, const float* inp, const float* weight, const float* bias,
                    int M, int K, int N) {
    check_sizes(M, K, N);
    if (M == 0 || N == 0) return;
    if (K == 0) {
        const std::size_t n = static_cast<std::size_t>(M) * N;
        fill_bias_kernel<<<detail::grid_size(n), detail::kBlock>>>(out, bias,
                                                                   static_cast<std::size_t>(M), N);
        MB_CUDA_CHECK_LAUNCH();
        return;
    }
    // cuBLASLt's heuristics take no alignment hint for the bias vector, so only a 16-byte
    // aligned bias is fused; another is added by a second kernel. Either way the bias is added
    // once to the fp32 product (a fixed choice per pointer alignment, so still reproducible).
    const bool fuse = bias == nullptr || alignment(bias) >= 16;
    run(Gemm{CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, K, K, N, weight, inp, out, fuse ? bias : nullptr,
             0.0f});
    if (!fuse) {
        const std::size_t n = static_cast<std::size_t>(M) * N;
        add_bias_kernel<<<detail::grid_size(n), detail::kBlock>>>(out, bias, n, N);
        MB_CUDA_CHECK_LAUNCH();
    }
}

void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                     const float* inp, const float* weight, int M, int K, int N) {
    check_sizes(M, K, N);
    if (M == 0 || N == 0) return;  // every gradient term is an empty sum
    if (K > 0) {
        if (dinp)
            run(Gemm{CUBLAS_OP_N, CUBLAS_OP_N, K, M, N, K, N, K, weight, dout, dinp, nullptr,
                     1.0f});
        if (dweight)
            run(Gemm{CUBLAS_OP_N, CUBLAS_OP_T, K, N, M, K, N, K, inp, dout, dweight, nullptr,
                     1.0f});
    }
    if (dbias) {
        const detail::RowSplit split = detail::row_split(M);
        detail::Scratch<float> partial(static_cast<std::size_t>(split.tasks) * N);
        bias_partials_kernel<<<detail::colsum_grid(N, split.tasks), detail::colsum_block()>>>(
            partial.get(), dout, M, N, split);
        MB_CUDA_CHECK_LAUNCH();
        detail::add_column_partials(dbias, partial.get(), split.tasks,
                                    static_cast<std::size_t>(N), N);
    }
}

}  // namespace mb::kernels::cuda
