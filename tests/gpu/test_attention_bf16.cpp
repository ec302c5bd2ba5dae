// attention_forward_bf16 / attention_backward_bf16 (tensor cores), called directly: below one
// tile of 64 queries (where the Backend takes the short attention wherever it fits), the
// rounding plan on uniform attention, and the refusals. From one tile on the Backend takes it in
// bf16, and the op table (test_backend_ops.cpp) checks it there against the CPU twin with these
// tolerances.
//
// The twin computes in fp32 from q, k, v rounded to bf16 (cpu/attention_bf16.hpp); the kernel
// also rounds to bf16 what its products read inside the attention: p (for p·V and pᵀ·dout),
// dout, and dS (for dS·K and dSᵀ·Q). Each such rounding moves a term by at most u = 2^-8 of
// itself (round to nearest in an 8-bit significand). Tolerances, inputs uniform in
// [-1.5, 1.5] and dout in [-1, 1]:
// - out: 1.2e-2 absolute. out is a softmax-weighted mean of values |v| <= 1.5; rounding each
//   weight's numerator by u moves the normalised weights by at most 2u in all, so out moves
//   by at most 2u · 1.5 = 0.0117. (The kernel's l sums the rounded p: the weights stay a
//   convex combination.)
// - lse: 5e-3 absolute: log of a sum whose terms move by u each, log(1 + u) = 0.0039.
// - dq, dk, dv, each part as an increment over a random start (gt::check_gradient_parts):
//   2e-2 of the largest increment plus 1e-3. Each term of dV = Σ pᵀ·dout carries two
//   roundings (p and dout, 2u = 0.0078 relative) and dS = p (dP - D) adds one more before
//   dS·K; the terms' errors are independent, so their sum's error stays well under 2u of the
//   column's largest terms.
// tests/kernels/test_attention_bf16.cpp replays the kernel's roundings on the CPU
// (attention_bf16_emulation.hpp) against the twin: at shapes like these (T up to 200, d 16 to
// 128) it stays within 2e-3 of out and lse and 4e-3 of the gradients, several times inside
// the bounds, so a failure here is the kernel's code, not its plan.
// Uniform attention (q = 0, so every p is exactly 1 and rounds to itself) takes the
// probability rounding out: there the forward must match to fp32 rounding, which pins the
// masks and the tiling (a key too many or too few moves a row by about 1/T).
// - lse = null in the forward, and two backward runs: bit-identical.
#include "attention_parity.hpp"
#include "gpu_check.hpp"

#include "cpu/attention_bf16.hpp"
#include "cuda/attention_bf16.cuh"

#include <cstdint>
#include <stdexcept>

namespace cpu = mb::kernels::cpu;
namespace cuda = mb::kernels::cuda;

namespace {

// The table above.
constexpr gt::AttentionTolerances kTolerances{0.0, 1.2e-2, 0.0, 5e-3, 2e-2, 1e-3};

void check_shape(const gt::AttentionShape& s, std::uint32_t seed) {
  gt::check_attention_parity({cpu::attention_forward_bf16, cpu::attention_backward_bf16},
                             {cuda::attention_forward_bf16, cuda::attention_backward_bf16},
                             kTolerances, s, seed, "attention_bf16");
}

}  // namespace

TEST_CASE("gpu bf16 attention (called directly) matches the CPU twin below one tile") {
  std::uint32_t seed = 1;
  // T around the backward's 32-key tiles, within the first 64-query block.
  for (int T : {1, 7, 31, 32, 33, 63})
    for (int d : {16, 64, 128})
      for (int H : {1, 3}) check_shape({2, T, H, d}, seed += 10);
}

TEST_CASE("gpu bf16 attention: uniform attention (q = 0) matches to fp32 rounding") {
  for (int T : {1, 50, 64, 65, 129, 260}) {
    const gt::AttentionShape s{2, T, 2, 64};
    CAPTURE(T);
    auto qkv = kt::random_floats(s.qkv_size(), 900 + static_cast<std::uint32_t>(T), -1.5f, 1.5f);
    const std::size_t row = static_cast<std::size_t>(s.H) * s.d;
    for (std::size_t bt = 0; bt < static_cast<std::size_t>(s.B) * s.T; ++bt)
      for (std::size_t e = 0; e < row; ++e) qkv[bt * 3 * row + e] = 0.0f;  // q = 0
    std::vector<float> want(s.out_size()), want_lse(s.lse_size());
    cpu::attention_forward_bf16(want.data(), want_lse.data(), qkv.data(), s.B, s.T, s.H, s.d);
    auto d_qkv = gt::to_device(qkv);
    auto out = gt::nan_buffer(s.out_size()), lse = gt::nan_buffer(s.lse_size());
    cuda::attention_forward_bf16(out.get(), lse.get(), d_qkv.get(), s.B, s.T, s.H, s.d);
    kt::check_close(out.download(), want, 1e-5, 1e-6, "uniform attention out");
    kt::check_close(lse.download(), want_lse, 1e-6, 1e-6, "uniform attention lse");
  }
}

TEST_CASE("gpu bf16 attention: the heads it takes, as the CPU; others and bad sizes throw") {
  for (int d = -16; d <= 160; d += 8)
    CHECK(cuda::attention_bf16_supports(d) == cpu::attention_bf16_supports(d));
  auto buf = gt::to_device(std::vector<float>(8, 7.0f));
  cuda::attention_forward_bf16(buf.get(), buf.get(), buf.get(), 2, 0, 1, 16);
  cuda::attention_backward_bf16(buf.get(), buf.get(), buf.get(), buf.get(), buf.get(), 0, 2, 1, 16);
  gt::check_equal(buf.download(), std::vector<float>(8, 7.0f), "untouched");
  for (int d : {0, 8, 24, 136})
    CHECK_THROWS_AS(cuda::attention_forward_bf16(buf.get(), nullptr, buf.get(), 1, 1, 1, d),
                    std::invalid_argument);
  CHECK_THROWS_AS(cuda::attention_backward_bf16(buf.get(), buf.get(), buf.get(), buf.get(),
                                                buf.get(), -1, 1, 1, 16),
                  std::invalid_argument);
}
