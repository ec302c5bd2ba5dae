// Bias + activation. The forward gives rows to threads in tasks of kForwardRows. The backward
// gives them column blocks: a thread goes down the rows of its block in order, adding each
// row's local gradient to dinp and to dbias itself, so dbias sums the rows in order (calls on
// consecutive row ranges give the bits of one call, as the weight gradients do:
// cpu/weight_gradient.hpp) whatever the number of threads. GELU's tanh goes through
// tanh_approx so the loops vectorise.
#include "cpu/activation.hpp"

#include "cpu/bf16.hpp"
#include "cpu/parallel.hpp"
#include "cpu/simd.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace mb::kernels::cpu {
namespace {

constexpr float kGeluA = 0.7978845608028654f;  // sqrt(2 / pi)
constexpr float kGeluB = 0.044715f;

// A zero bias row stands in for a null bias, so each loop has one form.
const float* bias_or_zeros(const float* bias, int C, std::vector<float>& zeros) {
  if (bias) return bias;
  zeros.assign(C, 0.0f);
  return zeros.data();
}

void check_sizes(int N, int C, const char* what) {
  if (N < 0 || C < 0) throw std::invalid_argument(std::string(what) + ": negative size");
}

bool worth_threads(int N, int C) { return static_cast<std::int64_t>(N) * C > 16384; }

// No __restrict on out/inp: the forward may run in place. GCC then checks for overlap at run
// time and still takes the vector loop when out == inp or the rows are disjoint.
MB_CPU_CLONES
void gelu_rows(float* out, const float* inp, const float* __restrict b, std::size_t r0,
               std::size_t r1, int C) {
  for (std::size_t r = r0; r < r1; ++r) {
    const float* x = inp + r * C;
    float* y = out + r * C;
    for (int i = 0; i < C; ++i) {
      const float v = x[i] + b[i];
      const float t = tanh_approx(kGeluA * (v + kGeluB * v * v * v));
      y[i] = 0.5f * v * (1.0f + t);
    }
  }
}

MB_CPU_CLONES
void relu_rows(float* out, const float* inp, const float* __restrict b, std::size_t r0,
               std::size_t r1, int C) {
  for (std::size_t r = r0; r < r1; ++r) {
    const float* x = inp + r * C;
    float* y = out + r * C;
    for (int i = 0; i < C; ++i) y[i] = std::max(x[i] + b[i], 0.0f);
  }
}

// The local gradient dout · act'(v) at v = inp + b.
inline float gelu_grad(float dy, float v) {
  const float t = tanh_approx(kGeluA * (v + kGeluB * v * v * v));
  const float dt = kGeluA * (1.0f + 3.0f * kGeluB * v * v) * (1.0f - t * t);
  return dy * (0.5f * (1.0f + t) + 0.5f * v * dt);
}
// A product with a 0/1 factor rather than a select, which GCC vectorises without
// -fno-trapping-math.
inline float relu_grad(float dy, float v) { return dy * static_cast<float>(v > 0.0f); }

// Columns per block of the backward pass: a block's rows are 256-byte segments, and the
// narrowest hidden layer of the shipped configs (4 · 32, million-cpu's local model) still gives
// each of two threads a block.
constexpr int kColumnBlock = 64;

// Columns [c0, c0 + w) of every row, rows in order. The input is inp, or (when inp_bf16 is
// not null) its bf16 copy, widened (exact: bf16 ⊂ fp32).
template <float (*Grad)(float, float)>
inline __attribute__((always_inline)) void backward_columns(
    float* __restrict dinp, float* __restrict dbias, const float* __restrict dout,
    const float* __restrict inp, const std::uint16_t* __restrict inp_bf16,
    const float* __restrict b, int N, int C, int c0, int w, bool accumulate_dinp) {
  float acc[kColumnBlock];
  if (dbias)
    for (int i = 0; i < w; ++i) acc[i] = dbias[c0 + i];
  for (int r = 0; r < N; ++r) {
    const std::size_t off = static_cast<std::size_t>(r) * C + c0;
    float g[kColumnBlock];
    for (int i = 0; i < w; ++i) {
      const float x = inp_bf16 ? bf16_value(inp_bf16[off + i]) : inp[off + i];
      g[i] = Grad(dout[off + i], x + b[c0 + i]);
    }
    if (dinp && accumulate_dinp)
      for (int i = 0; i < w; ++i) dinp[off + i] += g[i];
    else if (dinp)  // + 0: a -0 (ReLU's cut of a negative dout) is stored as +0, as if added
      for (int i = 0; i < w; ++i) dinp[off + i] = g[i] + 0.0f;
    if (dbias)
      for (int i = 0; i < w; ++i) acc[i] += g[i];
  }
  if (dbias)
    for (int i = 0; i < w; ++i) dbias[c0 + i] = acc[i];
}

MB_CPU_CLONES
void gelu_backward_columns(float* dinp, float* dbias, const float* dout, const float* inp,
                           const std::uint16_t* inp_bf16, const float* b, int N, int C, int c0,
                           int w, bool accumulate_dinp) {
  backward_columns<gelu_grad>(dinp, dbias, dout, inp, inp_bf16, b, N, C, c0, w, accumulate_dinp);
}

MB_CPU_CLONES
void relu_backward_columns(float* dinp, float* dbias, const float* dout, const float* inp,
                           const std::uint16_t* inp_bf16, const float* b, int N, int C, int c0,
                           int w, bool accumulate_dinp) {
  backward_columns<relu_grad>(dinp, dbias, dout, inp, inp_bf16, b, N, C, c0, w, accumulate_dinp);
}

using BackwardColumns = void (*)(float*, float*, const float*, const float*, const std::uint16_t*,
                                 const float*, int, int, int, int, bool);

void backward(BackwardColumns columns, float* dinp, float* dbias, const float* dout,
              const float* inp, const std::uint16_t* inp_bf16, const float* bias, int N, int C,
              bool accumulate_dinp, const char* what) {
  if (N == 0 || C == 0 || (!dinp && !dbias)) return;
  if (!inp && !inp_bf16)
    throw std::invalid_argument(std::string(what) + ": no input (inp and inp_bf16 both null)");
  std::vector<float> zeros;
  const float* b = bias_or_zeros(bias, C, zeros);
  const int blocks = (C + kColumnBlock - 1) / kColumnBlock;
  parallel_for(blocks, worth_threads(N, C), [&](int blk) {
    const int c0 = blk * kColumnBlock;
    columns(dinp, dbias, dout, inp, inp_bf16, b, N, C, c0, std::min(C - c0, kColumnBlock),
            accumulate_dinp);
  });
}

using FwdRows = void (*)(float*, const float*, const float*, std::size_t, std::size_t, int);

// Rows per task of the forward pass (each row's values are its own: any split gives the same).
constexpr int kForwardRows = 32;

void forward(FwdRows rows, float* out, const float* inp, const float* bias, int N, int C) {
  if (N == 0 || C == 0) return;
  std::vector<float> zeros;
  const float* b = bias_or_zeros(bias, C, zeros);
  const int tasks = (N + kForwardRows - 1) / kForwardRows;
  parallel_for(tasks, worth_threads(N, C), [&](int t) {
    rows(out, inp, b, static_cast<std::size_t>(t) * kForwardRows,
         static_cast<std::size_t>(std::min(N, (t + 1) * kForwardRows)), C);
  });
}

}  // namespace

void bias_gelu_forward(float* out, const float* inp, const float* bias, int N, int C) {
  check_sizes(N, C, "bias_gelu_forward");
  forward(gelu_rows, out, inp, bias, N, C);
}

void bias_gelu_backward(float* dinp, float* dbias, const float* dout, const float* inp,
                        const std::uint16_t* inp_bf16, const float* bias, int N, int C,
                        bool accumulate_dinp) {
  check_sizes(N, C, "bias_gelu_backward");
  backward(gelu_backward_columns, dinp, dbias, dout, inp, inp_bf16, bias, N, C, accumulate_dinp,
           "bias_gelu_backward");
}

void bias_relu_forward(float* out, const float* inp, const float* bias, int N, int C) {
  check_sizes(N, C, "bias_relu_forward");
  forward(relu_rows, out, inp, bias, N, C);
}

void bias_relu_backward(float* dinp, float* dbias, const float* dout, const float* inp,
                        const std::uint16_t* inp_bf16, const float* bias, int N, int C,
                        bool accumulate_dinp) {
  check_sizes(N, C, "bias_relu_backward");
  backward(relu_backward_columns, dinp, dbias, dout, inp, inp_bf16, bias, N, C, accumulate_dinp,
           "bias_relu_backward");
}

}  // namespace mb::kernels::cpu
