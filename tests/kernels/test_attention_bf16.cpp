// attention_forward_bf16 / attention_backward_bf16 (the CPU twin of the tensor-core
// attention): the fp32 attention of q, k, v rounded to bf16, bit for bit, and the heads it
// takes.
#include "attention_bf16_emulation.hpp"
#include "attention_reference.hpp"
#include "check.hpp"

#include "cpu/attention.hpp"
#include "cpu/attention_bf16.hpp"
#include "cpu/bf16.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

using namespace mb::kernels::cpu;

namespace {

using Shape = kt::AttentionShape;

std::vector<float> rounded(std::vector<float> x) {
  for (float& v : x) v = round_to_bf16(v);
  return x;
}

}  // namespace

TEST_CASE("bf16 attention takes heads that are a multiple of 16 wide, up to 128") {
  for (int d = 16; d <= 128; d += 16) CHECK(attention_bf16_supports(d));
  for (int d : {-16, 0, 1, 8, 24, 33, 65, 136, 144, 256}) CHECK_FALSE(attention_bf16_supports(d));
}

TEST_CASE("bf16 attention forward: the fp32 attention of q, k, v rounded to bf16") {
  for (Shape s : {Shape{2, 1, 2, 16}, Shape{1, 70, 3, 32}, Shape{2, 130, 1, 64}}) {
    CAPTURE(s.T);
    const auto qkv = kt::random_qkv(s, 40 + static_cast<std::uint32_t>(s.T));
    const auto qkv_r = rounded(qkv);
    const std::size_t nl = static_cast<std::size_t>(s.B) * s.H * s.T;
    std::vector<float> out(s.out_size(), 7.0f), lse(nl, 7.0f);
    std::vector<float> want(s.out_size(), 7.0f), want_lse(nl, 7.0f);
    attention_forward_bf16(out.data(), lse.data(), qkv.data(), s.B, s.T, s.H, s.d);
    attention_forward(want.data(), want_lse.data(), qkv_r.data(), s.B, s.T, s.H, s.d);
    CHECK(out == want);
    CHECK(lse == want_lse);
    // The rounding matters: from the unrounded q, k, v the fp32 attention differs.
    if (s.T > 1) {
      std::vector<float> unrounded(s.out_size());
      attention_forward(unrounded.data(), nullptr, qkv.data(), s.B, s.T, s.H, s.d);
      CHECK(unrounded != out);
    }
  }
}

TEST_CASE("bf16 attention backward: the fp32 backward at q, k, v rounded to bf16") {
  const Shape s{2, 75, 2, 32};
  const auto qkv = kt::random_qkv(s, 5);
  const auto qkv_r = rounded(qkv);
  std::vector<float> out(s.out_size()), lse(static_cast<std::size_t>(s.B) * s.H * s.T);
  attention_forward(out.data(), lse.data(), qkv_r.data(), s.B, s.T, s.H, s.d);
  const auto dout = kt::random_floats(s.out_size(), 6);
  auto got = kt::random_floats(s.qkv_size(), 7);  // the backward adds into it
  auto want = got, unrounded = got;
  attention_backward_bf16(got.data(), dout.data(), out.data(), lse.data(), qkv.data(), s.B, s.T,
                          s.H, s.d);
  attention_backward(want.data(), dout.data(), out.data(), lse.data(), qkv_r.data(), s.B, s.T, s.H,
                     s.d);
  CHECK(got == want);
  attention_backward(unrounded.data(), dout.data(), out.data(), lse.data(), qkv.data(), s.B, s.T,
                     s.H, s.d);
  CHECK(unrounded != got);
}

TEST_CASE("bf16 attention refuses heads it does not take and negative sizes") {
  std::vector<float> buf(3 * 136, 0.0f);
  float* p = buf.data();
  for (int d : {0, 8, 24, 136})
    CHECK_THROWS_AS(attention_forward_bf16(p, p, p, 1, 1, 1, d), std::invalid_argument);
  CHECK_THROWS_AS(attention_backward_bf16(p, p, p, p, p, 1, 1, 1, 8), std::invalid_argument);
  CHECK_THROWS_AS(attention_forward_bf16(p, p, p, -1, 1, 1, 16), std::invalid_argument);
  // Empty shapes are fine and write nothing.
  attention_forward_bf16(p, p, p, 0, 4, 1, 16);
  attention_forward_bf16(p, p, p, 1, 0, 1, 16);
  CHECK(buf == std::vector<float>(3 * 136, 0.0f));
}

// The tensor-core kernel's plan of roundings (replayed by attention_bf16_emulation.hpp) against
// this twin, with the tolerances tests/gpu/test_attention_bf16.cpp derives and allows: inputs
// in [-1.5, 1.5], dout in [-1, 1]; out within 1.2e-2, lse within 5e-3, each part of the
// gradient within 2e-2 of the whole gradient's largest increment plus 1e-3. So a GPU failure of
// those bounds is the kernel's, not the plan's.
TEST_CASE("bf16 attention: the tensor-core kernel's roundings stay within the GPU test's bounds") {
  for (Shape s :
       {Shape{1, 1, 1, 16}, Shape{2, 70, 2, 16}, Shape{1, 200, 2, 64}, Shape{1, 130, 1, 128}}) {
    CAPTURE(s.T);
    CAPTURE(s.d);
    const auto qkv =
        kt::random_floats(s.qkv_size(), 60 + static_cast<std::uint32_t>(s.T), -1.5f, 1.5f);
    std::vector<float> want(s.out_size()), want_lse(s.lse_size()), got, got_lse;
    attention_forward_bf16(want.data(), want_lse.data(), qkv.data(), s.B, s.T, s.H, s.d);
    kt::emulate_attention_forward_bf16(got, got_lse, qkv, s);
    kt::check_close(got, want, 0.0, 1.2e-2, "emulated out");
    kt::check_close(got_lse, want_lse, 0.0, 5e-3, "emulated lse");

    const auto dout = kt::random_floats(s.out_size(), 61);
    const auto start = kt::random_floats(s.qkv_size(), 62);
    auto want_g = start, got_g = start;
    attention_backward_bf16(want_g.data(), dout.data(), want.data(), want_lse.data(), qkv.data(),
                            s.B, s.T, s.H, s.d);
    kt::emulate_attention_backward_bf16(got_g, dout, want, want_lse, qkv, s);
    double mx = 0.0;
    for (std::size_t i = 0; i < start.size(); ++i)
      mx = std::max(mx, std::fabs(static_cast<double>(want_g[i]) - start[i]));
    kt::check_close(got_g, want_g, 0.0, 2e-2 * mx + 1e-3, "emulated dqkv");
  }
}
