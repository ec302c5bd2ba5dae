// attention_step: what the CUDA kernel refuses. Its parity with the CPU, over fp32 and bf16
// caches, is in the op table (test_backend_ops.cpp).
#include "gpu_check.hpp"

#include "cuda/attention_step.cuh"

#include <stdexcept>

namespace cuda = mb::kernels::cuda;

TEST_CASE("cuda attention_step refuses what the CPU refuses, and heads over 128") {
  float* p = nullptr;
  CHECK_THROWS_AS(cuda::attention_step(p, p, p, p, p, 1, 0, 1, 8, 0, 8, 0), std::invalid_argument);
  CHECK_THROWS_AS(cuda::attention_step(p, p, p, p, p, 0, 1, 1, 8, 0, 8, 0), std::invalid_argument);
  CHECK_THROWS_AS(cuda::attention_step(p, p, p, p, p, 1, 1, 1, 129, 0, 129, 0),
                  std::invalid_argument);
}
