// oneDNN matmul for the forward product and the input gradient of a linear layer; the weight
// gradient is weight_gradient_in_row_order (cpu/weight_gradient.hpp), whose sum over rows can
// be split into chunks of rows with the same bits. A transposed operand is described to oneDNN
// by a format tag ('ba' = column-major view of a row-major buffer) instead of being copied, and
// "+=" into the input gradient is oneDNN's sum post-op (without it the product overwrites), so
// the fp32 ops never copy or stage an operand. Primitives are cached by shape: creating one
// costs far more than a small product.
//
// The bf16 pair rounds its operands into per-thread staging buffers first (they keep the
// largest sizes seen by the thread, so memory is not allocated again call after call) and
// then runs the same fp32 primitives (see matmul.hpp).
#include "cpu/matmul.hpp"

#include "cpu/activation.hpp"
#include "cpu/bf16.hpp"
#include "cpu/parallel.hpp"
#include "cpu/simd.hpp"
#include "cpu/weight_gradient.hpp"

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <tuple>
#include <vector>

namespace mb::kernels::cpu {
namespace {

using dnnl::memory;
using tag = memory::format_tag;

// Which product a cached primitive computes; each fixes the operand layouts and post-ops.
enum class Product : int {
  forward,               // dst[M,N]  = src[M,K]  · wei[K,N] with wei = weight[N,K] read as 'ba'
  forward_relu,          // the same, then (with the bias) max(dst, 0): the ReLU post-op
  forward_residual,      // the same, then (with the bias) dst_old + dst: the sum post-op
  grad_input,            // dst[M,K] += src[M,N]  · wei[N,K] (dout · weight), both 'ab'
  grad_input_overwrite,  // dst[M,K] = the same product (dst is not read)
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

// The engine and the primitive cache below are created on first use and never destroyed, on
// purpose. As ordinary function statics they were destroyed at exit in the reverse order of
// their construction: the engine (made while the first primitive was built) before the cache,
// whose primitives then freed memory that belonged to the destroyed engine. That use after free
// crashed a process at exit now and then (seen as SIGSEGV inside dnnl_primitive_destroy under
// `meson test`, whose MALLOC_PERTURB_ scribbles over freed memory). The OS reclaims both.
dnnl::engine& cpu_engine() {
  static dnnl::engine& engine = *new dnnl::engine(dnnl::engine::kind::cpu, 0);
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
  static std::mutex& mutex = *new std::mutex;
  static auto& cache =
      *new std::map<Key, std::shared_ptr<const Cached>>;  // never destroyed: see cpu_engine()
  std::lock_guard<std::mutex> lock(mutex);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  if (cache.size() >= kMaxCached) cache.clear();

  const memory::dim R = key.rows, I = key.inner, C = key.cols;
  const auto f32 = memory::data_type::f32;
  auto entry = std::make_shared<Cached>();
  Cached& c = *entry;
  switch (key.product) {
    case Product::forward:
    case Product::forward_relu:
    case Product::forward_residual:
      c.src = memory::desc({R, I}, f32, tag::ab);
      c.wei = memory::desc({I, C}, f32, tag::ba);  // weight stored [C, I]
      break;
    case Product::grad_input:
    case Product::grad_input_overwrite:
      c.src = memory::desc({R, I}, f32, tag::ab);
      c.wei = memory::desc({I, C}, f32, tag::ab);
      break;
  }
  c.dst = memory::desc({R, C}, f32, tag::ab);
  if (key.bias) c.bias = memory::desc({1, C}, f32, tag::ab);

  dnnl::primitive_attr attr;
  dnnl::post_ops ops;
  if (key.product == Product::grad_input) {
    // sum post-op: dst = 1.0 * dst + product, i.e. gradient accumulation in place.
    ops.append_sum(1.0f);
  } else if (key.product == Product::forward_residual) {
    // sum post-op after the bias: dst = dst_old + (product + bias).
    ops.append_sum(1.0f);
  } else if (key.product == Product::forward_relu) {
    // eltwise post-op after the bias: dst = max(product + bias, 0) (scale 1, alpha 0).
    ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
  }
  attr.set_post_ops(ops);
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
    c.prim.execute(s, {{DNNL_ARG_SRC, src_m},
                       {DNNL_ARG_WEIGHTS, wei_m},
                       {DNNL_ARG_BIAS, bias_m},
                       {DNNL_ARG_DST, dst_m}});
  } else {
    c.prim.execute(s, {{DNNL_ARG_SRC, src_m}, {DNNL_ARG_WEIGHTS, wei_m}, {DNNL_ARG_DST, dst_m}});
  }
  s.wait();
}

Product grad_input(bool accumulate) {
  return accumulate ? Product::grad_input : Product::grad_input_overwrite;
}

void check_sizes(int M, int K, int N) {
  if (M < 0 || K < 0 || N < 0) throw std::invalid_argument("matmul: negative dimension");
}

// dbias[j] += sum_i dout[i, j], adding the rows in order to dbias[j] itself (so, as for the
// weight gradient, consecutive row ranges in consecutive calls give the bits of one call).
// Threads own disjoint column blocks, so the result does not depend on the number of threads;
// the inner loop runs along a contiguous row segment so it vectorises. 64 columns (four cache
// lines) per block keeps a few blocks per thread even for the narrow N = 256 of the byte
// vocabulary.
constexpr int kBiasCols = 64;

MB_CPU_CLONES
void bias_grad_block(float* __restrict dbias, const float* __restrict dout, int M, int N, int j0,
                     int j1) {
  float acc[kBiasCols];
  const int w = j1 - j0;
  for (int j = 0; j < w; ++j) acc[j] = dbias[j0 + j];
  for (int i = 0; i < M; ++i) {
    const float* __restrict row = dout + static_cast<std::size_t>(i) * N + j0;
    for (int j = 0; j < w; ++j) acc[j] += row[j];
  }
  for (int j = 0; j < w; ++j) dbias[j0 + j] = acc[j];
}

void bias_grad(float* dbias, const float* dout, int M, int N) {
  const int blocks = (N + kBiasCols - 1) / kBiasCols;
  parallel_for(blocks, static_cast<std::int64_t>(M) * N > 32768, [&](int b) {
    bias_grad_block(dbias, dout, M, N, b * kBiasCols, std::min(N, (b + 1) * kBiasCols));
  });
}

// Staging of the bf16 pair's operands, as fp32 values the primitives read: chunks of 16 Ki
// values (64 KiB of output), one OpenMP task each; both loop bodies are branch-free integer
// arithmetic and vectorise.
constexpr std::size_t kStageChunk = std::size_t{1} << 14;

// An fp32 operand rounded to bf16.
MB_CPU_CLONES
void stage_block(float* __restrict dst, const float* __restrict src, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) dst[i] = round_to_bf16(src[i]);
}

// A bf16 copy (a weight's, or a saved activation) expanded to the fp32 values it holds (exact).
MB_CPU_CLONES
void stage_block(float* __restrict dst, const std::uint16_t* __restrict src, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) dst[i] = bf16_value(src[i]);
}

// buf[0..n) = the bf16 values of src[0..n); returns buf.data(). buf only grows, so after the
// first call of a shape no memory is allocated (or faulted in) again.
template <class Source>
const float* staged_copy(std::vector<float>& buf, const Source* src, std::size_t n) {
  if (buf.size() < n) buf.resize(n);
  float* dst = buf.data();
  const auto chunks = static_cast<std::int64_t>((n + kStageChunk - 1) / kStageChunk);
  parallel_for(chunks, chunks > 1, [&](std::int64_t c) {
    const std::size_t begin = static_cast<std::size_t>(c) * kStageChunk;
    stage_block(dst + begin, src + begin, std::min(kStageChunk, n - begin));
  });
  return dst;
}

// bf16(x) for an operand of `rows` × `cols` in buf: from its bf16 copy when there is one,
// else rounded from the fp32 values.
const float* bf16_operand(std::vector<float>& buf, const float* x, const std::uint16_t* x_bf16,
                          int rows, int cols) {
  if (!x && !x_bf16)
    throw std::invalid_argument(
        "matmul bf16: an operand is missing (its fp32 values and its bf16 copy are both null)");
  const std::size_t n = static_cast<std::size_t>(rows) * cols;
  return x_bf16 ? staged_copy(buf, x_bf16, n) : staged_copy(buf, x, n);
}

// The calling thread's staging buffers for the rounded operands: one per operand role, so a
// backward call can hold bf16(dout), bf16(weight) and bf16(inp) at once. Per thread, so
// concurrent callers never share one.
struct Bf16Staging {
  std::vector<float> inp, weight, dout;
};

Bf16Staging& bf16_staging() {
  thread_local Bf16Staging staging;
  return staging;
}

// out = inp · weightᵀ (+ bias), then with Product::forward_relu max(out, 0), with
// Product::forward_residual added to out: the forward products, in fp32 ...
void forward_product(Product product, float* out, const float* inp, const float* weight,
                     const float* bias, int M, int K, int N) {
  check_sizes(M, K, N);
  if (M == 0 || N == 0) return;
  if (K == 0) {  // empty contraction: out = bias (oneDNN 2.6 builds but cannot execute K = 0)
    const bool relu = product == Product::forward_relu;
    if (product == Product::forward_residual) {  // out + (the empty product's bias or 0)
      for (std::size_t i = 0; i < static_cast<std::size_t>(M); ++i)
        for (int j = 0; j < N; ++j) out[i * N + j] += bias ? bias[j] : 0.0f;
      return;
    }
    for (std::size_t i = 0; i < static_cast<std::size_t>(M); ++i)
      for (int j = 0; j < N; ++j) out[i * N + j] = bias && !relu ? bias[j] : 0.0f;
    // The two ops' order: the empty product, then the bias and the max.
    if (relu) bias_relu_forward(out, out, bias, M, N);
    return;
  }
  run(Key{product, M, K, N, bias != nullptr}, inp, weight, bias, out);
}

// ... and on operands rounded to bf16 (from their bf16 copies where given).
void forward_product_bf16(Product product, float* out, const float* inp,
                          const std::uint16_t* inp_bf16, const float* weight,
                          const std::uint16_t* weight_bf16, const float* bias, int M, int K,
                          int N) {
  check_sizes(M, K, N);
  if (M == 0 || N == 0) return;
  if (K == 0) {  // no product: exactly as the fp32 op
    forward_product(product, out, nullptr, nullptr, bias, M, 0, N);
    return;
  }
  Bf16Staging& s = bf16_staging();
  const float* rinp = bf16_operand(s.inp, inp, inp_bf16, M, K);
  const float* rweight = bf16_operand(s.weight, weight, weight_bf16, N, K);
  run(Key{product, M, K, N, bias != nullptr}, rinp, rweight, bias, out);
}

}  // namespace

void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int M,
                    int K, int N) {
  forward_product(Product::forward, out, inp, weight, bias, M, K, N);
}

void matmul_bias_relu_forward(float* out, const float* inp, const float* weight, const float* bias,
                              int M, int K, int N) {
  forward_product(Product::forward_relu, out, inp, weight, bias, M, K, N);
}

void matmul_residual_forward(float* out, const float* inp, const float* weight, const float* bias,
                             int M, int K, int N) {
  forward_product(Product::forward_residual, out, inp, weight, bias, M, K, N);
}

void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int M, int K, int N, bool accumulate_dinp) {
  check_sizes(M, K, N);
  if (M == 0 || N == 0) return;  // every gradient term is an empty sum
  if (K > 0) {
    if (dinp) run(Key{grad_input(accumulate_dinp), M, N, K, false}, dout, weight, nullptr, dinp);
    if (dweight) weight_gradient_in_row_order(dweight, dout, inp, M, K, N);
  }
  if (dbias) bias_grad(dbias, dout, M, N);
}

void matmul_forward_bf16(float* out, const float* inp, const std::uint16_t* inp_bf16,
                         const float* weight, const std::uint16_t* weight_bf16, const float* bias,
                         int M, int K, int N) {
  forward_product_bf16(Product::forward, out, inp, inp_bf16, weight, weight_bf16, bias, M, K, N);
}

void matmul_bias_relu_forward_bf16(float* out, const float* inp, const std::uint16_t* inp_bf16,
                                   const float* weight, const std::uint16_t* weight_bf16,
                                   const float* bias, int M, int K, int N) {
  forward_product_bf16(Product::forward_relu, out, inp, inp_bf16, weight, weight_bf16, bias, M, K,
                       N);
}

void matmul_residual_forward_bf16(float* out, const float* inp, const std::uint16_t* inp_bf16,
                                  const float* weight, const std::uint16_t* weight_bf16,
                                  const float* bias, int M, int K, int N) {
  forward_product_bf16(Product::forward_residual, out, inp, inp_bf16, weight, weight_bf16, bias, M,
                       K, N);
}

void matmul_backward_bf16(float* dinp, float* dweight, float* dbias, const float* dout,
                          const float* inp, const std::uint16_t* inp_bf16, const float* weight,
                          const std::uint16_t* weight_bf16, int M, int K, int N,
                          bool accumulate_dinp) {
  check_sizes(M, K, N);
  if (M == 0 || N == 0) return;  // every gradient term is an empty sum
  if (K > 0 && (dinp || dweight)) {
    Bf16Staging& s = bf16_staging();
    const float* rdout = bf16_operand(s.dout, dout, nullptr, M, N);
    if (dinp) {
      const float* rweight = bf16_operand(s.weight, weight, weight_bf16, N, K);
      run(Key{grad_input(accumulate_dinp), M, N, K, false}, rdout, rweight, nullptr, dinp);
    }
    if (dweight) {
      const float* rinp = bf16_operand(s.inp, inp, inp_bf16, M, K);
      weight_gradient_in_row_order(dweight, rdout, rinp, M, K, N);
    }
  }
  if (dbias) bias_grad(dbias, dout, M, N);  // from the unrounded fp32 dout
}

}  // namespace mb::kernels::cpu
