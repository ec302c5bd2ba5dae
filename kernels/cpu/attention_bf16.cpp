// The bf16 attention's CPU twin: q, k, v rounded to bf16, then the fp32 attention (see
// attention_bf16.hpp for what the CUDA kernel rounds besides).
#include "cpu/attention_bf16.hpp"

#include "cpu/attention.hpp"
#include "cpu/bf16.hpp"
#include "cpu/parallel.hpp"

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace mb::kernels::cpu {
namespace {

void check_sizes(int B, int T, int H, int d) {
  if (B < 0 || T < 0 || H < 0) throw std::invalid_argument("attention_bf16: need B, T, H >= 0");
  if (!attention_bf16_supports(d))
    throw std::invalid_argument("attention_bf16: heads must be a multiple of 16 wide, at most " +
                                std::to_string(kAttentionBf16MaxHeadDim) +
                                "; got d = " + std::to_string(d));
}

std::vector<float> rounded_qkv(const float* qkv, int B, int T, int H, int d) {
  const std::size_t n = static_cast<std::size_t>(B) * T * 3 * H * d;
  std::vector<float> r(n);
  parallel_for(n, n > (std::size_t{1} << 16), [&](std::size_t i) { r[i] = round_to_bf16(qkv[i]); });
  return r;
}

}  // namespace

void attention_forward_bf16(float* out, float* lse, const float* qkv, int B, int T, int H, int d) {
  check_sizes(B, T, H, d);
  const std::vector<float> r = rounded_qkv(qkv, B, T, H, d);
  attention_forward(out, lse, r.data(), B, T, H, d);
}

void attention_backward_bf16(float* dqkv, const float* dout, const float* out, const float* lse,
                             const float* qkv, int B, int T, int H, int d, bool accumulate_dqkv) {
  check_sizes(B, T, H, d);
  const std::vector<float> r = rounded_qkv(qkv, B, T, H, d);
  attention_backward(dqkv, dout, out, lse, r.data(), B, T, H, d, accumulate_dqkv);
}

}  // namespace mb::kernels::cpu
