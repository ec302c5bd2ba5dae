// Bias + activation. The forward is one elementwise kernel. The backward is the two-pass
// column sum of colsum.cuh: pass 1 gives each thread one column and one task of consecutive
// rows; it walks the rows in order, adds the local gradient into dinp and into a running sum,
// and stores the sum in its own slot; pass 2 adds the slots in task order into dbias. The
// order of every addition is fixed by (N, C), so dbias is bit-reproducible run to run.
//
// The saved pre-activation is read as fp32 or as its bf16 copy: the backward kernel is a
// template on the element it loads (load_value widens a bf16 pattern exactly).
//
// GELU uses the device tanhf (a few ulp) where the CPU uses its vectorisable tanh_approx
// (absolute error below 2e-7): the two twins agree to about 1e-6, not bit for bit.
#include "cuda/activation.cuh"

#include "cpu/bf16.hpp"  // bf16_value, __host__ __device__
#include "cuda/colsum.cuh"
#include "cuda/common.cuh"

#include <stdexcept>
#include <string>

namespace mb::kernels::cuda {
namespace {

constexpr float kGeluA = 0.7978845608028654f;  // sqrt(2 / pi)
constexpr float kGeluB = 0.044715f;

enum class Act { gelu, relu };

template <Act A>
__device__ float activate(float v) {
  if constexpr (A == Act::gelu) {
    const float t = tanhf(kGeluA * (v + kGeluB * v * v * v));
    return 0.5f * v * (1.0f + t);
  } else {
    return fmaxf(v, 0.0f);
  }
}

// d act / d v at v = inp + bias.
template <Act A>
__device__ float activate_grad(float v) {
  if constexpr (A == Act::gelu) {
    const float t = tanhf(kGeluA * (v + kGeluB * v * v * v));
    const float dt = kGeluA * (1.0f + 3.0f * kGeluB * v * v) * (1.0f - t * t);
    return 0.5f * (1.0f + t) + 0.5f * v * dt;
  } else {
    // As the CPU: the gradient at exactly 0 is 0.
    return v > 0.0f ? 1.0f : 0.0f;
  }
}

// Elementwise over N·C values; the column of element i is i % C. out may alias inp.
template <Act A>
__global__ void forward_kernel(float* out, const float* inp, const float* bias, std::size_t n,
                               int C) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const float b = bias ? bias[i % static_cast<std::size_t>(C)] : 0.0f;
    out[i] = activate<A>(inp[i] + b);
  }
}

__device__ float load_value(const float* p, std::size_t i) { return p[i]; }
__device__ float load_value(const std::uint16_t* p, std::size_t i) { return cpu::bf16_value(p[i]); }

// Pass 1 of the backward (see the file comment). partial may be null (no dbias), dinp may be
// null (dbias only). In is float or std::uint16_t (a bf16 copy).
template <Act A, class In>
__global__ void backward_kernel(float* dinp, float* partial, const float* dout, const In* inp,
                                const float* bias, int N, int C, detail::RowSplit split,
                                bool accumulate_dinp) {
  const int c = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  const int t = static_cast<int>(blockIdx.y * blockDim.y + threadIdx.y);
  if (c >= C || t >= split.tasks) return;
  const float b = bias ? bias[c] : 0.0f;
  float sum = 0.0f;
  for (int r = split.begin(t); r < split.end(t, N); ++r) {
    const std::size_t i = static_cast<std::size_t>(r) * C + c;
    const float g = dout[i] * activate_grad<A>(load_value(inp, i) + b);
    if (dinp) dinp[i] = (accumulate_dinp ? dinp[i] : 0.0f) + g;  // a -0 stored as +0, as the CPU
    sum += g;
  }
  if (partial) partial[static_cast<std::size_t>(t) * C + c] = sum;
}

void check_sizes(int N, int C, const char* what) {
  if (N < 0 || C < 0) throw std::invalid_argument(std::string(what) + ": negative size");
}

template <Act A>
void forward(float* out, const float* inp, const float* bias, int N, int C) {
  if (N == 0 || C == 0) return;
  const std::size_t n = static_cast<std::size_t>(N) * C;
  forward_kernel<A><<<detail::grid_size(n), detail::kBlock>>>(out, inp, bias, n, C);
  MB_CUDA_CHECK_LAUNCH();
}

template <Act A>
void backward(float* dinp, float* dbias, const float* dout, const float* inp,
              const std::uint16_t* inp_bf16, const float* bias, int N, int C, bool accumulate_dinp,
              const char* what) {
  if (N == 0 || C == 0 || (!dinp && !dbias)) return;
  if (!inp && !inp_bf16)
    throw std::invalid_argument(std::string(what) + ": no input (inp and inp_bf16 both null)");
  const detail::RowSplit split = detail::row_split(N);
  detail::Scratch<float> partial(dbias ? static_cast<std::size_t>(split.tasks) * C : 0);
  const dim3 grid = detail::colsum_grid(C, split.tasks), block = detail::colsum_block();
  if (inp_bf16)
    backward_kernel<A>
        <<<grid, block>>>(dinp, partial.get(), dout, inp_bf16, bias, N, C, split, accumulate_dinp);
  else
    backward_kernel<A>
        <<<grid, block>>>(dinp, partial.get(), dout, inp, bias, N, C, split, accumulate_dinp);
  MB_CUDA_CHECK_LAUNCH();
  if (dbias) detail::add_column_partials(dbias, partial.get(), split.tasks, C, C);
}

}  // namespace

void bias_gelu_forward(float* out, const float* inp, const float* bias, int N, int C) {
  check_sizes(N, C, "bias_gelu_forward");
  forward<Act::gelu>(out, inp, bias, N, C);
}

void bias_gelu_backward(float* dinp, float* dbias, const float* dout, const float* inp,
                        const std::uint16_t* inp_bf16, const float* bias, int N, int C,
                        bool accumulate_dinp) {
  check_sizes(N, C, "bias_gelu_backward");
  backward<Act::gelu>(dinp, dbias, dout, inp, inp_bf16, bias, N, C, accumulate_dinp,
                      "bias_gelu_backward");
}

void bias_relu_forward(float* out, const float* inp, const float* bias, int N, int C) {
  check_sizes(N, C, "bias_relu_forward");
  forward<Act::relu>(out, inp, bias, N, C);
}

void bias_relu_backward(float* dinp, float* dbias, const float* dout, const float* inp,
                        const std::uint16_t* inp_bf16, const float* bias, int N, int C,
                        bool accumulate_dinp) {
  check_sizes(N, C, "bias_relu_backward");
  backward<Act::relu>(dinp, dbias, dout, inp, inp_bf16, bias, N, C, accumulate_dinp,
                      "bias_relu_backward");
}

}  // namespace mb::kernels::cuda
