// embedding_forward / embedding_backward: what the CUDA kernels refuse. Their parity with the
// CPU is a row of the op table (tests/backend_ops/op_cases.cpp, run by test_backend_ops.cpp).
#include "gpu_check.hpp"

#include "cuda/embedding.cuh"

#include <stdexcept>

namespace cuda = mb::kernels::cuda;

TEST_CASE("gpu embedding: ids outside [0, V) are rejected before anything is written") {
  const int C = 2, V = 3;
  auto table = gt::to_device(std::vector<float>(V * C, 1.0f));
  auto out = gt::to_device(std::vector<float>(2 * C, 7.0f));
  auto d = gt::to_device(std::vector<float>(V * C, 0.0f));
  auto g = gt::to_device(std::vector<float>(2 * C, 1.0f));
  auto bad_hi = gt::to_device(std::vector<std::int32_t>{0, 3});
  auto bad_lo = gt::to_device(std::vector<std::int32_t>{-1, 0});
  CHECK_THROWS_AS(cuda::embedding_forward(out.get(), bad_hi.get(), table.get(), 2, C, V),
                  std::out_of_range);
  CHECK_THROWS_WITH_AS(cuda::embedding_backward(d.get(), g.get(), bad_lo.get(), 2, C, V),
                       "embedding_backward: id -1 at row 0 is outside [0, 3)", std::out_of_range);
  gt::check_equal(out.download(), std::vector<float>(2 * C, 7.0f), "out untouched");
  gt::check_equal(d.download(), std::vector<float>(V * C, 0.0f), "dtable untouched");
}
