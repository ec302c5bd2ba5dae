// oneDNN matmul for the three products of a linear layer. Transposed operands are described to
// oneDNN by a format tag ('ba' = column-major view of a row-major buffer) instead of being
// copied, and "+=" into gradients is oneDNN's sum post-op, so no operand is ever copied or
// staged here. Primitives are cached by shape: creating one costs far more than a small product.
#include "cpu/matmul.hpp"

#include "cpu/simd.hpp"

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <tuple>

namespace mb::kernels::cpu {
namespace {

using dnnl::memory;
using tag = memory::format_tag;

// Which of the three products a cached primitive computes; each fixes the operand layouts.
enum class Product : int {
    forward,       // dst[M,N]  = src[M,K]  · wei[K,N] with wei = weight[N,K] read as 'ba'
    grad_input,    // dst[M,K] += src[M,N]  · wei[N,K] (dout · weight), both 'ab'
    grad_weight,   // dst[N,K] += src[N,M]  · wei[M,K] with src = dout[M,N] read as 'ba'
};

struct Key {
    Product product;
    std::int64_t rows, inner, cols;  // dst is rows x cols, contraction over inner
    bool bias;
    bool operator<(const Key& o) const {
        return std::tie(product, rows, inner, cols, bias) <
               std::tie(o.product, o.rows, o.inner, o.cols, o.bias);
    }
};

struct Cached {
    dnnl::matmul prim;
    memory::desc src, wei, bias, dst;
};

dnnl::engine& cpu_engine() {
    static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return engine;
}

// A oneDNN stream is not meant to be shared between threads that submit concurrently, so
// each calling thread has its own (on the CPU a stream is only a handle; creating one is cheap).
dnnl::stream& cpu_stream() {
    thread_local dnnl::stream stream(cpu_engine());
    return stream;
}

// The model calls a few dozen distinct shapes; the bound only guards against callers that
// vary M without end (e.g. growing sampling contexts), by starting over when it is reached.
constexpr std::size_t kMaxCached = 512;

// Entries are shared pointers so that a caller keeps its primitive alive even if another
// thread clears the cache meanwhile.
std::shared_ptr<const Cached> get_primitive(const Key& key) {
    static std::mutex mutex;
    static std::map<Key, std::shared_ptr<const Cached>> cache;
    std::lock_guard<std::mutex> lock(mutex);
    if (auto it = cache.find(key); it != cache.end()) return it->second;
    if (cache.size() >= kMaxCached) cache.clear();

    const memory::dim R = key.rows, I = key.inner, C = key.cols;
    const auto f32 = memory::data_type::f32;
    auto entry = std::make_shared<Cached>();
    Cached& c = *entry;
    switch (key.product) {
    case Product::forward:
        c.src = memory::desc({R, I}, f32, tag::ab);
        c.wei = memory::desc({I, C}, f32, tag::ba);  // weight stored [C, I]
        break;
    case Product::grad_input:
        c.src = memory::desc({R, I}, f32, tag::ab);
        c.wei = memory::desc({I, C}, f32, tag::ab);
        break;
    case Product::grad_weight:
        c.src = memory::desc({R, I}, f32, tag::ba);  // dout stored [I, R]
        c.wei = memory::desc({I, C}, f32, tag::ab);
        break;
    }
    c.dst = memory::desc({R, C}, f32, tag::ab);
    if (key.bias) c.bias = memory::desc({1, C}, f32, tag::ab);

    dnnl::primitive_attr attr;
    if (key.product != Product::forward) {
        // sum post-op: dst = 1.0 * dst + product, i.e. gradient accumulation in place.
        dnnl::post_ops ops;
        ops.append_sum(1.0f);
        attr.set_post_ops(ops);
    }
    const auto desc = key.bias ? dnnl::matmul::desc(c.src, c.wei, c.bias, c.dst)
                               : dnnl::matmul::desc(c.src, c.wei, c.dst);
    c.prim = dnnl::matmul(dnnl::matmul::primitive_desc(desc, attr, cpu_engine()));
    cache.emplace(key, entry);
    return entry;
}

void run(const Key& key, const float* src, const float* wei, const float* bias, float* dst) {
    const auto entry = get_primitive(key);
    const Cached& c = *entry;
    dnnl::engine& eng = cpu_engine();
    // oneDNN takes non-const handles but only reads src/weights/bias.
    memory src_m(c.src, eng, const_cast<float*>(src));
    memory wei_m(c.wei, eng, const_cast<float*>(wei));
    memory dst_m(c.dst, eng, dst);
    dnnl::stream& s = cpu_stream();
    if (key.bias) {
        memory bias_m(c.bias, eng, const_cast<float*>(bias));
        c.prim.execute(s, {{DNNL_ARG_SRC, src_m}, {DNNL_ARG_WEIGHTS, wei_m},
                           {DNNL_ARG_BIAS, bias_m}, {DNNL_ARG_DST, dst_m}});
    } else {
        c.prim.execute(s, {{DNNL_ARG_SRC, src_m}, {DNNL_ARG_WEIGHTS, wei_m},
                           {DNNL_ARG_DST, dst_m}});
    }
    s.wait();
}

void check_sizes(int M, int K, int N) {
    if (M < 0 || K < 0 || N < 0) throw std::invalid_argument("matmul: negative dimension");
}

// dbias[j] += sum_i dout[i, j]. Threads own disjoint column blocks and add rows in order, so
// the result does not depend on the number of threads; the inner loop runs along a contiguous
// row segment so it vectorises. 64 columns (four cache lines) per block keeps a few blocks per
// thread even for the narrow N = 256 of the byte vocabulary.
constexpr int kBiasCols = 64;

MB_CPU_CLONES
void bias_grad_block(float* __restrict dbias, const float* __restrict dout, int M, int N,
                     int j0, int j1) {
    float acc[kBiasCols] = {};
    const int w = j1 - j0;
    for (int i = 0; i < M; ++i) {
        const float* __restrict row = dout + static_cast<std::size_t>(i) * N + j0;
        for (int j = 0; j < w; ++j) acc[j] += row[j];
    }
    for (int j = 0; j < w; ++j) dbias[j0 + j] += acc[j];
}

}  // namespace

void matmul_forward(float* out, const float* inp, const float* weight, const float* bias,
                    int M, int K, int N) {
    check_sizes(M, K, N);
    if (M == 0 || N == 0) return;
    if (K == 0) {  // empty contraction: out = bias (oneDNN 2.6 builds but cannot execute K = 0)
        for (std::size_t i = 0; i < static_cast<std::size_t>(M); ++i)
            for (int j = 0; j < N; ++j) out[i * N + j] = bias ? bias[j] : 0.0f;
        return;
    }
    run(Key{Product::forward, M, K, N, bias != nullptr}, inp, weight, bias, out);
}

void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                     const float* inp, const float* weight, int M, int K, int N) {
    check_sizes(M, K, N);
    if (M == 0 || N == 0) return;  // every gradient term is an empty sum
    if (K > 0) {
        if (dinp) run(Key{Product::grad_input, M, N, K, false}, dout, weight, nullptr, dinp);
        if (dweight) run(Key{Product::grad_weight, N, M, K, false}, dout, inp, nullptr, dweight);
    }
    if (dbias) {
        const int blocks = (N + kBiasCols - 1) / kBiasCols;
#pragma omp parallel for schedule(static) if (static_cast<std::int64_t>(M) * N > 32768)
        for (int b = 0; b < blocks; ++b)
            bias_grad_block(dbias, dout, M, N, b * kBiasCols, std::min(N, (b + 1) * kBiasCols));
    }
}

}  // namespace mb::kernels::cpu
