// dropout_forward / dropout_backward: what parity with the CPU (the op table,
// test_backend_ops.cpp) cannot show alone, and the refusals.
#include "gpu_check.hpp"

#include "cuda/dropout.cuh"

#include <stdexcept>

namespace cuda = mb::kernels::cuda;

TEST_CASE("gpu dropout forward: another seed or offset gives another mask") {
  // Guards the op table's parity rows against a mask that ignores its seed or offset on both
  // sides alike.
  const std::size_t n = 4096;
  const auto x = kt::random_floats(n, 11, 0.5f, 1.5f);
  auto dx = gt::to_device(x);
  auto a = gt::nan_buffer(n), b = gt::nan_buffer(n), c = gt::nan_buffer(n);
  cuda::dropout_forward(a.get(), dx.get(), n, 0.5f, 1, 0);
  cuda::dropout_forward(b.get(), dx.get(), n, 0.5f, 2, 0);
  cuda::dropout_forward(c.get(), dx.get(), n, 0.5f, 1, 1);
  CHECK(a.download() != b.download());
  CHECK(a.download() != c.download());
}

TEST_CASE("gpu dropout: p outside [0, 1) is rejected as on the CPU") {
  auto buf = gt::to_device(std::vector<float>(4, 1.0f));
  CHECK_THROWS_AS(cuda::dropout_forward(buf.get(), buf.get(), 4, 1.0f, 1, 0),
                  std::invalid_argument);
  CHECK_THROWS_AS(cuda::dropout_forward(buf.get(), buf.get(), 4, -0.1f, 1, 0),
                  std::invalid_argument);
  CHECK_THROWS_AS(cuda::dropout_backward(buf.get(), buf.get(), 4, 1.5f, 1, 0),
                  std::invalid_argument);
  gt::check_equal(buf.download(), std::vector<float>(4, 1.0f), "dropout buffer untouched");
}
