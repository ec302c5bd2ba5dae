// attention_forward / attention_backward against a naive double reference (full softmax per
// row), finite differences, and causality.
#include "attention_reference.hpp"
#include "check.hpp"

#include "cpu/attention.hpp"

#include <omp.h>

using namespace mb::kernels::cpu;

namespace {

using Shape = kt::AttentionShape;
using kt::random_qkv;
using kt::ref_attention;

void check_forward(Shape s, std::uint32_t seed) {
  auto qkv = random_qkv(s, seed);
  std::vector<float> out(s.out_size(), 7.0f), lse(static_cast<std::size_t>(s.B) * s.H * s.T);
  attention_forward(out.data(), lse.data(), qkv.data(), s.B, s.T, s.H, s.d);
  std::vector<double> want_lse;
  auto want = ref_attention(kt::to_double(qkv), s, &want_lse);
  kt::check_close(out, want, 1e-4, 1e-5, "attention out");
  kt::check_close(lse, want_lse, 1e-5, 1e-5, "attention lse");
}

// The analytic gradient against central differences, over every stride-th entry of qkv.
void check_backward(Shape s, std::uint32_t seed, std::size_t stride = 1) {
  const auto backward = [](float* dqkv, const float* dout, const float* out, const float* lse,
                           const float* qkv, int B, int T, int H,
                           int d) { attention_backward(dqkv, dout, out, lse, qkv, B, T, H, d); };
  kt::check_attention_finite_differences(attention_forward, backward, s, seed, stride, "attention");
}

}  // namespace

TEST_CASE("attention forward: T = 1, partial blocks, several batches and heads") {
  for (int T : {1, 2, 7, kAttentionBlockQ, kAttentionBlockQ + 1, kAttentionBlockK - 1,
                kAttentionBlockK, kAttentionBlockK + 1, 2 * kAttentionBlockK + 5})
    check_forward({2, T, 3, 8}, 100 + T);
  check_forward({1, 200, 2, 64}, 7);  // a realistic head size, four key blocks
  check_forward({1, 9, 1, 1}, 8);     // d = 1
}

TEST_CASE("attention backward: finite differences on every entry, small shapes") {
  check_backward({1, 1, 1, 4}, 1);  // T = 1: out = v, only dv is non-zero
  check_backward({2, 5, 2, 3}, 2);
  check_backward({1, 13, 3, 5}, 3);
}

TEST_CASE("attention backward: finite differences across block boundaries") {
  // A subset of entries (every 7th) keeps the double reference affordable at this size.
  check_backward({1, kAttentionBlockK + kAttentionBlockQ + 3, 2, 4}, 4, 7);
  check_backward({2, kAttentionBlockQ + 1, 1, 6}, 5, 3);
}

TEST_CASE("attention is causal: changing position t changes no output or lse before t") {
  const Shape s{2, 2 * kAttentionBlockK + 9, 2, 8};
  auto qkv = random_qkv(s, 11);
  std::vector<float> out(s.out_size()), lse(static_cast<std::size_t>(s.B) * s.H * s.T);
  attention_forward(out.data(), lse.data(), qkv.data(), s.B, s.T, s.H, s.d);
  for (int t : {0, 1, kAttentionBlockQ, kAttentionBlockK, s.T - 1}) {
    auto changed = qkv;
    for (int b = 0; b < s.B; ++b)
      for (int w = 0; w < 3; ++w)
        for (int h = 0; h < s.H; ++h)
          for (int e = 0; e < s.d; ++e) changed[s.qkv(b, t, w, h, e)] += 0.5f;
    std::vector<float> out2(out.size()), lse2(lse.size());
    attention_forward(out2.data(), lse2.data(), changed.data(), s.B, s.T, s.H, s.d);
    std::size_t before_diff = 0, at_or_after_diff = 0;
    for (int b = 0; b < s.B; ++b)
      for (int u = 0; u < s.T; ++u)
        for (int h = 0; h < s.H; ++h) {
          bool diff = lse[(static_cast<std::size_t>(b) * s.H + h) * s.T + u] !=
                      lse2[(static_cast<std::size_t>(b) * s.H + h) * s.T + u];
          for (int e = 0; e < s.d; ++e) diff |= out[s.out(b, u, h, e)] != out2[s.out(b, u, h, e)];
          (u < t ? before_diff : at_or_after_diff) += diff;
        }
    CHECK_MESSAGE(before_diff == 0, "t = " << t);
    CHECK_MESSAGE(at_or_after_diff > 0, "t = " << t);
  }
}

TEST_CASE("attention: deterministic across thread counts; lse may be null") {
  const Shape s{2, 100, 3, 16};
  auto qkv = random_qkv(s, 21);
  auto g = kt::random_floats(s.out_size(), 22);
  std::vector<float> out(s.out_size()), lse(static_cast<std::size_t>(s.B) * s.H * s.T),
      dqkv(qkv.size(), 0.0f);
  attention_forward(out.data(), lse.data(), qkv.data(), s.B, s.T, s.H, s.d);
  attention_backward(dqkv.data(), g.data(), out.data(), lse.data(), qkv.data(), s.B, s.T, s.H, s.d);
  std::vector<float> out_nolse(out.size());
  attention_forward(out_nolse.data(), nullptr, qkv.data(), s.B, s.T, s.H, s.d);
  CHECK(out_nolse == out);
  const int saved = omp_get_max_threads();
  for (int threads : {1, 3}) {
    omp_set_num_threads(threads);
    std::vector<float> out_t(out.size()), lse_t(lse.size()), d_t(qkv.size(), 0.0f);
    attention_forward(out_t.data(), lse_t.data(), qkv.data(), s.B, s.T, s.H, s.d);
    attention_backward(d_t.data(), g.data(), out_t.data(), lse_t.data(), qkv.data(), s.B, s.T, s.H,
                       s.d);
    CHECK(out_t == out);
    CHECK(lse_t == lse);
    CHECK(d_t == dqkv);
  }
  omp_set_num_threads(saved);
}
