// short_attention_forward / short_attention_backward: the device's shared-memory limits and
// the refusals. Its parity with the CPU twin is in the op table (test_backend_ops.cpp), where
// the backend gives it every sequence of at most 256 positions that fits.
#include "gpu_check.hpp"

#include "cpu/short_attention.hpp"
#include "cuda/short_attention.cuh"

#include <stdexcept>

namespace cpu = mb::kernels::cpu;
namespace cuda = mb::kernels::cuda;

TEST_CASE("gpu short attention: the device's shared memory bounds the shapes it takes") {
  const std::size_t max = cuda::short_attention_max_smem_bytes();
  MESSAGE("short attention may use " << max << " bytes of shared memory per block here");
  CHECK(max > 48 * 1024);  // every GPU since Volta lets a block opt in past 48 KiB
  CHECK(max <= cpu::kShortAttentionMaxSmemBytes);
  for (int T : {8, 32, 64, 125, 126, 192, 256})
    for (int d : {32, 64, 96, 128})
      CHECK(cuda::short_attention_fits(T, d) == cpu::short_attention_fits(T, d, max));
}

TEST_CASE("gpu short attention: empty shapes write nothing; shapes that do not fit throw") {
  auto buf = gt::to_device(std::vector<float>(8, 7.0f));
  cuda::short_attention_forward(buf.get(), buf.get(), buf.get(), 2, 0, 1, 4);
  cuda::short_attention_forward(buf.get(), buf.get(), buf.get(), 0, 2, 1, 4);
  cuda::short_attention_backward(buf.get(), buf.get(), buf.get(), buf.get(), buf.get(), 1, 2, 0, 4);
  gt::check_equal(buf.download(), std::vector<float>(8, 7.0f), "untouched");
  CHECK_THROWS_AS(cuda::short_attention_forward(buf.get(), nullptr, buf.get(), 1,
                                                cpu::kShortAttentionMaxT + 1, 1, 8),
                  std::invalid_argument);
  CHECK_THROWS_AS(cuda::short_attention_forward(buf.get(), nullptr, buf.get(), 1, 1, 1,
                                                cpu::kShortAttentionMaxHeadDim + 1),
                  std::invalid_argument);
  CHECK_THROWS_AS(cuda::short_attention_backward(buf.get(), buf.get(), buf.get(), buf.get(),
                                                 buf.get(), 1, 126, 1, 128),
                  std::invalid_argument);
  CHECK_THROWS_AS(cuda::short_attention_backward(buf.get(), buf.get(), buf.get(), buf.get(),
                                                 buf.get(), 1, 1, 1, 0),
                  std::invalid_argument);
}
