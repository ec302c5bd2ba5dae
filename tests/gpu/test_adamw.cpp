// adamw_step, grad_norm_squared, clip_grad_norm: the refusals and empty inputs of the CUDA
// kernels; their parity with the CPU is in the op table (test_backend_ops.cpp). scale_grads
// (a kernel the Backend does not offer) against the CPU here. Tolerance: exact (one fp32
// multiply on both sides).
#include "gpu_check.hpp"

#include "cpu/adamw.hpp"
#include "cuda/adamw.cuh"

#include <stdexcept>

namespace cpu = mb::kernels::cpu;
namespace cuda = mb::kernels::cuda;

namespace {

// Around the 256-thread block and the 65536-element chunks of the norm.
const std::size_t kSizes[] = {1, 257, 65535, 65536, 65537, 300007};

}  // namespace

TEST_CASE("gpu adamw: step 0 is refused; an empty gradient has norm 0") {
  auto buf = gt::to_device(std::vector<float>(2, 0.0f));
  CHECK_THROWS_AS(cuda::adamw_step(buf.get(), nullptr, buf.get(), buf.get(), buf.get(), 2, 0, 1e-3f,
                                   0.9f, 0.999f, 1e-8f, 0.0f),
                  std::invalid_argument);
  CHECK(cuda::grad_norm_squared(nullptr, 0) == 0.0);
}

TEST_CASE("gpu scale_grads is the CPU's product, exactly") {
  for (std::size_t n : kSizes) {
    CAPTURE(n);
    auto g = kt::random_floats(n, 3);
    auto dg = gt::to_device(g);
    cpu::scale_grads(g.data(), n, 0.37f);
    cuda::scale_grads(dg.get(), n, 0.37f);
    gt::check_equal(dg.download(), g, "scaled gradients");
  }
}
