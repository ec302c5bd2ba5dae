// attention_step (one query against a KV cache, for generation) against attention_forward: the
// step for position t over positions 0..t must be row t of the full causal forward.
#include "check.hpp"

#include "cpu/attention.hpp"
#include "cpu/attention_step.hpp"
#include "cpu/bf16.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

using namespace mb::kernels::cpu;

namespace {

// Compares the step result of every position of one random sequence with the full forward;
// qkv is read in place (stride 3·H·d) and from a separate cache of rows [t, H·d].
void check_steps(int T, int H, int d, std::uint32_t seed, float range = 2.0f) {
  const std::size_t C = static_cast<std::size_t>(H) * d;
  const auto qkv = kt::random_floats(static_cast<std::size_t>(T) * 3 * C, seed, -range, range);
  std::vector<float> full(static_cast<std::size_t>(T) * C);
  attention_forward(full.data(), nullptr, qkv.data(), 1, T, H, d);

  std::vector<float> kcache(T * C), vcache(T * C), scores(static_cast<std::size_t>(H) * T);
  for (int t = 0; t < T; ++t) {
    const float* row = qkv.data() + static_cast<std::size_t>(t) * 3 * C;
    std::copy_n(row + C, C, kcache.begin() + t * C);
    std::copy_n(row + 2 * C, C, vcache.begin() + t * C);
    const std::vector<float> want(full.begin() + t * C, full.begin() + (t + 1) * C);

    std::vector<float> in_place(C, 7.0f), cached(C, 7.0f);
    attention_step(in_place.data(), scores.data(), row, qkv.data() + C, qkv.data() + 2 * C, 1,
                   t + 1, H, d, 0, 3 * C, 0);
    attention_step(cached.data(), scores.data(), row, kcache.data(), vcache.data(), 1, t + 1, H, d,
                   0, C, 0);
    INFO("T " << T << ", H " << H << ", d " << d << ", position " << t);
    kt::check_close(in_place, want, 1e-5, 1e-6, "step over qkv in place");
    kt::check_close(cached, want, 1e-5, 1e-6, "step over a KV cache");
  }
}

}  // namespace

TEST_CASE("attention_step equals every row of attention_forward") {
  check_steps(1, 1, 4, 1);  // one position: out = v
  check_steps(9, 3, 8, 2);
  check_steps(kAttentionBlockK + 3, 2, 5, 3);  // across the full kernel's key blocks
  check_steps(20, 1, 64, 4);                   // a realistic head size
}

TEST_CASE("attention_step: the last row of a long sequence, many heads (threaded path)") {
  const int T = 300, H = 8, d = 32;
  const std::size_t C = static_cast<std::size_t>(H) * d;
  const auto qkv = kt::random_floats(static_cast<std::size_t>(T) * 3 * C, 5, -2.0f, 2.0f);
  std::vector<float> full(static_cast<std::size_t>(T) * C), out(C), scores(H * T);
  attention_forward(full.data(), nullptr, qkv.data(), 1, T, H, d);
  attention_step(out.data(), scores.data(), qkv.data() + (T - 1) * 3 * C, qkv.data() + C,
                 qkv.data() + 2 * C, 1, T, H, d, 0, 3 * C, 0);
  kt::check_close(out, std::vector<float>(full.end() - C, full.end()), 1e-5, 1e-6, "last row");
}

TEST_CASE("attention_step is stable for large scores") {
  // Scores of several hundred: exp would overflow without the row maximum subtracted.
  check_steps(12, 2, 16, 6, 30.0f);
  const int H = 1, d = 4;
  std::vector<float> q{100, 100, 100, 100}, k{100, 100, 100, 100, -100, -100, -100, -100},
      v{1, 2, 3, 4, 5, 6, 7, 8}, out(4), scores(2);
  attention_step(out.data(), scores.data(), q.data(), k.data(), v.data(), 1, 2, H, d, 0, 4, 0);
  for (int e = 0; e < d; ++e) CHECK(out[e] == doctest::Approx(v[e]));
}

TEST_CASE("attention_step over a batch: each sequence as if alone, bit for bit") {
  // Three sequences with caches of 128 positions (the step sees n = 120), queries in rows of
  // a [B, 3, H, d] buffer, as the generator keeps them; B·H·n·d = 69,120 multiply-adds, past
  // the 65,536 from which the heads run on several threads.
  const int B = 3, n = 120, capacity = 128, H = 4, d = 48;
  const std::size_t C = static_cast<std::size_t>(H) * d, cache = capacity * C;
  const auto qkv = kt::random_floats(B * 3 * C, 11, -2.0f, 2.0f);
  const auto keys = kt::random_floats(B * cache, 12, -2.0f, 2.0f);
  const auto values = kt::random_floats(B * cache, 13, -2.0f, 2.0f);
  std::vector<float> out(B * C, 7.0f), scores(static_cast<std::size_t>(B) * H * n);
  attention_step(out.data(), scores.data(), qkv.data(), keys.data(), values.data(), B, n, H, d,
                 3 * C, C, cache);
  for (int b = 0; b < B; ++b) {
    std::vector<float> alone(C, 7.0f), alone_scores(static_cast<std::size_t>(H) * n);
    attention_step(alone.data(), alone_scores.data(), qkv.data() + b * 3 * C,
                   keys.data() + b * cache, values.data() + b * cache, 1, n, H, d, 0, C, 0);
    CAPTURE(b);
    CHECK(std::vector<float>(out.begin() + b * C, out.begin() + (b + 1) * C) == alone);
  }
}

TEST_CASE("attention_step_bf16: caches of bf16 patterns read at their values, bit for bit") {
  const int B = 2, n = 37, H = 3, d = 40;
  const std::size_t C = static_cast<std::size_t>(H) * d, cache = static_cast<std::size_t>(n) * C;
  const auto q = kt::random_floats(B * 3 * C, 21, -2.0f, 2.0f);
  std::vector<std::uint16_t> keys(B * cache), values(B * cache);
  std::vector<float> wide_keys(B * cache), wide_values(B * cache);
  const auto rk = kt::random_floats(B * cache, 22, -2.0f, 2.0f);
  const auto rv = kt::random_floats(B * cache, 23, -2.0f, 2.0f);
  for (std::size_t i = 0; i < B * cache; ++i) {
    keys[i] = bf16_bits(rk[i]);
    values[i] = bf16_bits(rv[i]);
    wide_keys[i] = bf16_value(keys[i]);
    wide_values[i] = bf16_value(values[i]);
  }
  std::vector<float> got(B * C), want(B * C), scores(static_cast<std::size_t>(B) * H * n);
  attention_step_bf16(got.data(), scores.data(), q.data(), keys.data(), values.data(), B, n, H, d,
                      3 * C, C, cache);
  attention_step(want.data(), scores.data(), q.data(), wide_keys.data(), wide_values.data(), B, n,
                 H, d, 3 * C, C, cache);
  CHECK(got == want);
  CHECK_THROWS_AS(attention_step_bf16(got.data(), scores.data(), q.data(), keys.data(),
                                      values.data(), B, 0, H, d, 3 * C, C, cache),
                  std::invalid_argument);
}

TEST_CASE("attention_step refuses an empty cache or batch") {
  float x[4] = {};
  CHECK_THROWS_AS(attention_step(x, x, x, x, x, 1, 0, 1, 4, 0, 4, 0), std::invalid_argument);
  CHECK_THROWS_AS(attention_step(x, x, x, x, x, 0, 1, 1, 4, 0, 4, 0), std::invalid_argument);
}
