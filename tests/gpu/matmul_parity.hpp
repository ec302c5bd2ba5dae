// What both CUDA matmul pairs, the fp32 one (test_matmul.cpp) and the bf16 one
// (test_matmul_bf16.cpp), must refuse or leave alone: M = 0 or N = 0 writes nothing, negative
// sizes throw. Their parity with the CPU is in the op table (test_backend_ops.cpp).
#pragma once

#include "gpu_check.hpp"

#include <stdexcept>
#include <string>
#include <vector>

namespace gt {

// A CUDA matmul pair with the fp32 signature; the bf16 pair is wrapped to it.
struct MatmulPair {
  using Forward = void (*)(float* out, const float* inp, const float* weight, const float* bias,
                           int M, int K, int N);
  using Backward = void (*)(float* dinp, float* dweight, float* dbias, const float* dout,
                            const float* inp, const float* weight, int M, int K, int N,
                            bool accumulate_dinp);
  std::string name;  // "matmul" or "matmul bf16", the prefix of every message
  Forward gpu_forward;
  Backward gpu_backward;
};

// M = 0 or N = 0 writes nothing; negative sizes throw std::invalid_argument.
inline void check_matmul_empty_and_negative(const MatmulPair& pair) {
  auto out = to_device(std::vector<float>(4, 7.0f));
  auto x = to_device(std::vector<float>(4, 1.0f));
  pair.gpu_forward(out.get(), x.get(), x.get(), x.get(), 0, 2, 2);
  pair.gpu_forward(out.get(), x.get(), x.get(), x.get(), 2, 2, 0);
  pair.gpu_backward(out.get(), out.get(), out.get(), x.get(), x.get(), x.get(), 0, 2, 2, true);
  pair.gpu_backward(out.get(), out.get(), out.get(), x.get(), x.get(), x.get(), 0, 2, 2, false);
  check_equal(out.download(), std::vector<float>(4, 7.0f), pair.name + " untouched");
  CHECK_THROWS_AS(pair.gpu_forward(out.get(), x.get(), x.get(), nullptr, -1, 2, 2),
                  std::invalid_argument);
  CHECK_THROWS_AS(
      pair.gpu_backward(out.get(), nullptr, nullptr, x.get(), x.get(), x.get(), 2, -2, 2, true),
      std::invalid_argument);
}

}  // namespace gt
