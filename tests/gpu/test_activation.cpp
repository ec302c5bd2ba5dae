// bias_gelu_* / bias_relu_*: empty shapes and refusals of the CUDA kernels. Their parity with
// the CPU, from fp32 values and from bf16 patterns, is in the op table (test_backend_ops.cpp).
#include "gpu_check.hpp"

#include "cuda/activation.cuh"

#include <stdexcept>

namespace cuda = mb::kernels::cuda;

TEST_CASE("gpu bias + activation: N = 0 or C = 0 touch nothing") {
  auto buf = gt::to_device(std::vector<float>(8, 3.0f));
  cuda::bias_gelu_forward(buf.get(), buf.get(), nullptr, 0, 8);
  cuda::bias_relu_backward(buf.get(), buf.get(), buf.get(), buf.get(), nullptr, nullptr, 8, 0);
  gt::check_equal(buf.download(), std::vector<float>(8, 3.0f), "untouched");
  CHECK_THROWS_AS(
      cuda::bias_gelu_backward(buf.get(), nullptr, buf.get(), nullptr, nullptr, nullptr, 2, 4),
      std::invalid_argument);
}
