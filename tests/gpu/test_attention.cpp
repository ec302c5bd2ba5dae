// attention_forward / attention_backward (the tiled fp32 attention), called directly: the
// CUDA twin against the CPU on sequences the Backend gives the short attention wherever its
// shared memory holds them (the tiled one takes them on GPUs with less: sm_86, sm_89), and its
// refusals. Through the Backend (T > 256, or heads too wide for the short attention) it is in
// the op table (test_backend_ops.cpp).
//
// Tolerances (inputs uniform in [-1.5, 1.5], so scores stay within about ±2.25·sqrt(d)):
// - out: 1e-4 relative + 1e-5 absolute. Each element is a softmax-weighted mean of values of
//   magnitude <= 1.5, summed in different orders (warp shuffles against the CPU's blocked
//   tiles), with the device's expf against the CPU's exp_approx (both within a few ulps):
//   differences are a few fp32 ulps of 1, around 1e-6.
// - lse: 1e-5 relative + 1e-5 absolute (m + log l: an fp32 max, which is exact, plus the log of
//   a sum of at most T terms in [0, 1]).
// - dq, dk, dv: compared as increments over the random starting gradient, each part (q, k, v)
//   separately, 1e-4 relative to the largest increment of the whole gradient (at T = 1 dq and
//   dk are rounding noise; gt::check_gradient_parts) plus 5e-7 absolute: sums over up to T
//   products in different orders, and the starting values (|x| < 1) contribute up to one ulp
//   (1.2e-7) of rounding on each side.
// - lse = null in the forward, and two backward runs: bit-identical.
#include "attention_parity.hpp"
#include "gpu_check.hpp"

#include "cpu/attention.hpp"
#include "cuda/attention.cuh"

#include <cstdint>
#include <stdexcept>

namespace cpu = mb::kernels::cpu;
namespace cuda = mb::kernels::cuda;

namespace {

// The table above.
constexpr gt::AttentionTolerances kTolerances{1e-4, 1e-5, 1e-5, 1e-5, 1e-4, 5e-7};

void check_shape(const gt::AttentionShape& s, std::uint32_t seed) {
  gt::check_attention_parity({cpu::attention_forward, cpu::attention_backward},
                             {cuda::attention_forward, cuda::attention_backward}, kTolerances, s,
                             seed, "attention");
}

}  // namespace

TEST_CASE("gpu attention (tiled, called directly) matches the CPU on short sequences") {
  std::uint32_t seed = 1;
  for (int T : {1, 7, 64, 65, 200})
    for (int d : {8, 64})
      for (int H : {1, 3}) check_shape({2, T, H, d}, seed += 10);
}

TEST_CASE("gpu attention (tiled, called directly): heads not a warp multiple, and the widest") {
  check_shape({1, 65, 2, 33}, 300);
  check_shape({1, 70, 1, 1}, 310);
  check_shape({2, 100, 2, 128}, 320);
}

TEST_CASE("gpu attention: empty shapes write nothing; d above the limit throws") {
  auto buf = gt::to_device(std::vector<float>(8, 7.0f));
  cuda::attention_forward(buf.get(), buf.get(), buf.get(), 2, 0, 1, 4);
  cuda::attention_forward(buf.get(), buf.get(), buf.get(), 0, 2, 1, 4);
  cuda::attention_backward(buf.get(), buf.get(), buf.get(), buf.get(), buf.get(), 1, 2, 0, 4);
  gt::check_equal(buf.download(), std::vector<float>(8, 7.0f), "untouched");
  CHECK_THROWS_AS(cuda::attention_forward(buf.get(), nullptr, buf.get(), 1, 1, 1,
                                          cuda::kAttentionMaxHeadDim + 1),
                  std::invalid_argument);
  CHECK_THROWS_AS(
      cuda::attention_backward(buf.get(), buf.get(), buf.get(), buf.get(), buf.get(), 1, 1, 1, 0),
      std::invalid_argument);
}
