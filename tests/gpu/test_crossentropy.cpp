// crossentropy_*: the CUDA kernels' refusals, and crossentropy_count (not a Backend op). The
// forward and backward passes' parity with the CPU is in the op table (test_backend_ops.cpp).
#include "gpu_check.hpp"

#include "cpu/crossentropy.hpp"
#include "cuda/crossentropy.cuh"

#include <random>
#include <stdexcept>

namespace cpu = mb::kernels::cpu;
namespace cuda = mb::kernels::cuda;

namespace {

std::vector<std::int32_t> random_targets(int N, int V, std::uint32_t seed, double masked) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> cls(0, V - 1);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<std::int32_t> t(N);
  for (auto& x : t) x = u(gen) < masked ? -1 : cls(gen);
  return t;
}

}  // namespace

TEST_CASE("gpu crossentropy_count counts the CPU's rows") {
  for (double masked : {0.0, 0.3, 1.0})
    for (int N : {1, 257, 14000}) {
      CAPTURE(masked);
      CAPTURE(N);
      const auto targets = random_targets(N, 300, 7, masked);
      auto dt = gt::to_device(targets);
      CHECK(cuda::crossentropy_count(dt.get(), N) == cpu::crossentropy_count(targets.data(), N));
    }
}

TEST_CASE("gpu crossentropy: targets at or above V are rejected before anything is written") {
  const int N = 3, D = 2, V = 4;
  auto h = gt::to_device(std::vector<float>(N * D, 0.5f));
  auto E = gt::to_device(std::vector<float>(V * D, 0.25f));
  auto targets = gt::to_device(std::vector<std::int32_t>{0, -1, 4});
  auto losses = gt::to_device(std::vector<float>(N, 7.0f));
  auto dh = gt::to_device(std::vector<float>(N * D, 1.0f));
  CHECK_THROWS_WITH_AS(
      cuda::crossentropy_forward(losses.get(), h.get(), E.get(), targets.get(), N, D, V),
      "crossentropy_forward: target 4 at row 2 is not below V = 4", std::out_of_range);
  CHECK_THROWS_AS(cuda::crossentropy_backward(dh.get(), nullptr, h.get(), E.get(), targets.get(),
                                              1.0f, N, D, V),
                  std::out_of_range);
  gt::check_equal(losses.download(), std::vector<float>(N, 7.0f), "losses untouched");
  gt::check_equal(dh.download(), std::vector<float>(N * D, 1.0f), "dh untouched");
}
