// Bias + activation. Rows go to threads in tasks fixed by N alone (detail::row_tasks); each
// task also sums its local gradient into its own dbias slot, reduced in task order afterwards.
// GELU's tanh goes through tanh_approx so the row loops vectorise.
#include "cpu/activation.hpp"

#include "cpu/bf16.hpp"
#include "cpu/colsum.hpp"
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

// Local gradient of one row: g = dout · act'(inp + b) into g (scratch, C floats).
MB_CPU_CLONES
void gelu_grad_row(float* __restrict g, const float* __restrict dy, const float* __restrict x,
                   const float* __restrict b, int C) {
  for (int i = 0; i < C; ++i) {
    const float v = x[i] + b[i];
    const float t = tanh_approx(kGeluA * (v + kGeluB * v * v * v));
    const float dt = kGeluA * (1.0f + 3.0f * kGeluB * v * v) * (1.0f - t * t);
    g[i] = dy[i] * (0.5f * (1.0f + t) + 0.5f * v * dt);
  }
}

MB_CPU_CLONES
void relu_grad_row(float* __restrict g, const float* __restrict dy, const float* __restrict x,
                   const float* __restrict b, int C) {
  // A product with a 0/1 factor rather than a select, which GCC vectorises without
  // -fno-trapping-math.
  for (int i = 0; i < C; ++i) g[i] = dy[i] * static_cast<float>(x[i] + b[i] > 0.0f);
}

MB_CPU_CLONES
void add_into(float* __restrict dst, const float* __restrict src, int C) {
  for (int i = 0; i < C; ++i) dst[i] += src[i];
}

MB_CPU_CLONES
void widen_row(float* __restrict dst, const std::uint16_t* __restrict src, int C) {
  for (int i = 0; i < C; ++i) dst[i] = bf16_value(src[i]);
}

using GradRow = void (*)(float*, const float*, const float*, const float*, int);

void backward(GradRow grad_row, float* dinp, float* dbias, const float* dout, const float* inp,
              const std::uint16_t* inp_bf16, const float* bias, int N, int C, const char* what) {
  if (N == 0 || C == 0 || (!dinp && !dbias)) return;
  if (!inp && !inp_bf16)
    throw std::invalid_argument(std::string(what) + ": no input (inp and inp_bf16 both null)");
  std::vector<float> zeros;
  const float* b = bias_or_zeros(bias, C, zeros);
  const detail::RowTasks split = detail::row_tasks(N);
  const int tasks = split.count;
  std::vector<float> partial(dbias ? static_cast<std::size_t>(tasks) * C : 0, 0.0f);
  const bool big = worth_threads(N, C);
#pragma omp parallel if (big)
  {
    std::vector<float> g(C), widened(inp_bf16 ? C : 0);
#pragma omp for schedule(static)
    for (int t = 0; t < tasks; ++t) {
      for (int r = split.begin(t); r < split.end(t, N); ++r) {
        const std::size_t off = static_cast<std::size_t>(r) * C;
        const float* x = widened.data();
        if (inp_bf16)  // the copy, read instead of inp (exact: bf16 ⊂ fp32), which is then null
          widen_row(widened.data(), inp_bf16 + off, C);
        else
          x = inp + off;
        grad_row(g.data(), dout + off, x, b, C);
        if (dinp) add_into(dinp + off, g.data(), C);
        if (dbias) add_into(partial.data() + static_cast<std::size_t>(t) * C, g.data(), C);
      }
    }
  }
  if (dbias) detail::add_partials(dbias, partial.data(), tasks, C, C, big);
}

using FwdRows = void (*)(float*, const float*, const float*, std::size_t, std::size_t, int);

void forward(FwdRows rows, float* out, const float* inp, const float* bias, int N, int C) {
  if (N == 0 || C == 0) return;
  std::vector<float> zeros;
  const float* b = bias_or_zeros(bias, C, zeros);
  const detail::RowTasks split = detail::row_tasks(N);
#pragma omp parallel for schedule(static) if (worth_threads(N, C))
  for (int t = 0; t < split.count; ++t)
    rows(out, inp, b, static_cast<std::size_t>(split.begin(t)),
         static_cast<std::size_t>(split.end(t, N)), C);
}

}  // namespace

void bias_gelu_forward(float* out, const float* inp, const float* bias, int N, int C) {
  check_sizes(N, C, "bias_gelu_forward");
  forward(gelu_rows, out, inp, bias, N, C);
}

void bias_gelu_backward(float* dinp, float* dbias, const float* dout, const float* inp,
                        const std::uint16_t* inp_bf16, const float* bias, int N, int C) {
  check_sizes(N, C, "bias_gelu_backward");
  backward(gelu_grad_row, dinp, dbias, dout, inp, inp_bf16, bias, N, C, "bias_gelu_backward");
}

void bias_relu_forward(float* out, const float* inp, const float* bias, int N, int C) {
  check_sizes(N, C, "bias_relu_forward");
  forward(relu_rows, out, inp, bias, N, C);
}

void bias_relu_backward(float* dinp, float* dbias, const float* dout, const float* inp,
                        const std::uint16_t* inp_bf16, const float* bias, int N, int C) {
  check_sizes(N, C, "bias_relu_backward");
  backward(relu_grad_row, dinp, dbias, dout, inp, inp_bf16, bias, N, C, "bias_relu_backward");
}

}  // namespace mb::kernels::cpu
