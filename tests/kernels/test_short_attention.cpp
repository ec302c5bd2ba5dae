// short_attention_forward / _backward (cpu/short_attention.hpp) against the double reference
// (attention_reference.hpp) and against the tiled attention (cpu/attention.hpp), which compute
// the same function; finite differences; accumulation; null lse; determinism; the shapes the
// pair refuses and short_attention_fits' boundaries.
//
// Tolerances (inputs uniform in [-2, 2]; gradients compared as increments over random starting
// values, each part q, k, v relative to the whole gradient's largest increment, as tests/gpu
// does):
// - out: 1e-4 relative + 1e-5 absolute, lse: 1e-5 + 1e-5, as test_attention.cpp: fp32 sums of
//   at most 256 terms of magnitude <= 2, and exp_approx within 1 ulp of exp.
// - dq, dk, dv against the double reference: 1e-4 of the largest increment + 5e-7 (the
//   rounding of the starting values, |x| < 1, on each side).
// - against the tiled attention: the same bounds; the two differ only in the order of their
//   sums (the tiled kernel's online softmax rescales by blocks of 64 keys).
// - finite differences: 1e-3 relative + 1e-4 absolute, as test_attention.cpp.
#include "attention_reference.hpp"
#include "check.hpp"

#include "cpu/attention.hpp"
#include "cpu/attention_bf16.hpp"
#include "cpu/short_attention.hpp"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

using namespace mb::kernels::cpu;
using Shape = kt::AttentionShape;

namespace {

// Increments got - start of part `which` (0 q, 1 k, 2 v) of a qkv-shaped buffer; `start` may
// be empty (zeros).
template <class G>
std::vector<double> part_increment(const std::vector<G>& got, const std::vector<float>& start,
                                   const Shape& s, int which) {
  std::vector<double> inc;
  const std::size_t row = static_cast<std::size_t>(s.H) * s.d;
  for (std::size_t bt = 0; bt < static_cast<std::size_t>(s.B) * s.T; ++bt)
    for (std::size_t e = 0; e < row; ++e) {
      const std::size_t i = (bt * 3 + static_cast<std::size_t>(which)) * row + e;
      inc.push_back(static_cast<double>(got[i]) -
                    (start.empty() ? 0.0 : static_cast<double>(start[i])));
    }
  return inc;
}

// Each part of the gradient increment `got` - `start` against `want`: |error| <= 1e-4 ·
// (|want| + the largest |want| of the whole gradient) + 5e-7. The whole gradient's scale, not
// the part's: dq and dk sum dS = p (dout · v - D), whose rounding is that of dout · v, and which
// cancels to nothing at T = 1 (dq = dk = 0 up to that rounding, while dv = dout).
void check_gradient(const std::vector<float>& got, const std::vector<float>& start,
                    const std::vector<double>& want, const std::vector<float>& want_start,
                    const Shape& s, const std::string& what) {
  double mx = 0.0;
  for (int which = 0; which < 3; ++which)
    for (double x : part_increment(want, want_start, s, which)) mx = std::max(mx, std::fabs(x));
  const char* parts[] = {" dq", " dk", " dv"};
  for (int which = 0; which < 3; ++which)
    kt::check_close(part_increment(got, start, s, which),
                    part_increment(want, want_start, s, which), 1e-4, 1e-4 * mx + 5e-7,
                    what + parts[which]);
}

// Forward and backward of short_attention against the double reference and against the tiled
// attention, on shape s.
void check_shape(const Shape& s, std::uint32_t seed) {
  CAPTURE(s.B);
  CAPTURE(s.T);
  CAPTURE(s.H);
  CAPTURE(s.d);
  const auto qkv = kt::random_qkv(s, seed);
  std::vector<float> out(s.out_size(), 7.0f), lse(s.lse_size(), 7.0f);
  short_attention_forward(out.data(), lse.data(), qkv.data(), s.B, s.T, s.H, s.d);
  std::vector<double> ref_lse;
  const auto ref_out = kt::ref_attention(kt::to_double(qkv), s, &ref_lse);
  kt::check_close(out, ref_out, 1e-4, 1e-5, "short attention out vs double");
  kt::check_close(lse, ref_lse, 1e-5, 1e-5, "short attention lse vs double");

  std::vector<float> tiled_out(s.out_size()), tiled_lse(s.lse_size());
  attention_forward(tiled_out.data(), tiled_lse.data(), qkv.data(), s.B, s.T, s.H, s.d);
  kt::check_close(out, tiled_out, 1e-4, 1e-5, "short attention out vs attention");
  kt::check_close(lse, tiled_lse, 1e-5, 1e-5, "short attention lse vs attention");

  // Backward into random non-zero gradients, each kernel from its own forward.
  const auto g = kt::random_floats(s.out_size(), seed + 1);
  const auto start = kt::random_floats(s.qkv_size(), seed + 2);
  auto dqkv = start, tiled_dqkv = start;
  short_attention_backward(dqkv.data(), g.data(), out.data(), lse.data(), qkv.data(), s.B, s.T, s.H,
                           s.d);
  attention_backward(tiled_dqkv.data(), g.data(), tiled_out.data(), tiled_lse.data(), qkv.data(),
                     s.B, s.T, s.H, s.d);
  check_gradient(dqkv, start, kt::ref_attention_backward(qkv, g, s), {}, s,
                 "short attention vs double");
  std::vector<double> tiled(tiled_dqkv.begin(), tiled_dqkv.end());
  check_gradient(dqkv, start, tiled, start, s, "short attention vs attention");
}

// The analytic gradient against central differences, over every stride-th entry of qkv.
void check_finite_differences(const Shape& s, std::uint32_t seed, std::size_t stride = 1) {
  const auto forward = [](float* out, float* lse, const float* qkv, int B, int T, int H, int d) {
    short_attention_forward(out, lse, qkv, B, T, H, d);
  };
  const auto backward = [](float* dqkv, const float* dout, const float* out, const float* lse,
                           const float* qkv, int B, int T, int H, int d) {
    short_attention_backward(dqkv, dout, out, lse, qkv, B, T, H, d);
  };
  kt::check_attention_finite_differences(forward, backward, s, seed, stride, "short attention");
}

}  // namespace

TEST_CASE("short attention: patch lengths and the limits, against double and attention") {
  std::uint32_t seed = 1;
  for (int T : {1, 7, 8, 31, 32, 33, 192, 256})
    for (int d : {8, 32, 64, 128})
      if (short_attention_fits(T, d)) check_shape({2, T, 3, d}, seed += 10);
  check_shape({2, 125, 2, 128}, 500);  // the longest sequence at d = 128
  check_shape({3, 9, 2, 1}, 510);      // d = 1
  check_shape({2, 65, 2, 33}, 520);    // d not a multiple of the vector width
}

TEST_CASE("short attention backward: finite differences") {
  check_finite_differences({1, 1, 1, 4}, 1);  // T = 1: out = v, only dv is non-zero
  check_finite_differences({2, 5, 2, 3}, 2);
  check_finite_differences({2, 8, 2, 8}, 3);  // the text patch
  // A subset of entries (every 7th) keeps the double reference affordable at this size.
  check_finite_differences({1, 40, 2, 6}, 4, 7);
}

TEST_CASE("short attention: lse may be null; deterministic across thread counts") {
  const Shape s{3, 33, 4, 16};
  const auto qkv = kt::random_qkv(s, 21);
  const auto g = kt::random_floats(s.out_size(), 22);
  std::vector<float> out(s.out_size()), lse(s.lse_size()), dqkv(qkv.size(), 0.0f);
  short_attention_forward(out.data(), lse.data(), qkv.data(), s.B, s.T, s.H, s.d);
  short_attention_backward(dqkv.data(), g.data(), out.data(), lse.data(), qkv.data(), s.B, s.T, s.H,
                           s.d);
  std::vector<float> out_nolse(out.size(), 7.0f);
  short_attention_forward(out_nolse.data(), nullptr, qkv.data(), s.B, s.T, s.H, s.d);
  CHECK(out_nolse == out);
  const int saved = omp_get_max_threads();
  for (int threads : {1, 3}) {
    omp_set_num_threads(threads);
    std::vector<float> out_t(out.size()), lse_t(lse.size()), d_t(qkv.size(), 0.0f);
    short_attention_forward(out_t.data(), lse_t.data(), qkv.data(), s.B, s.T, s.H, s.d);
    short_attention_backward(d_t.data(), g.data(), out_t.data(), lse_t.data(), qkv.data(), s.B, s.T,
                             s.H, s.d);
    CHECK(out_t == out);
    CHECK(lse_t == lse);
    CHECK(d_t == dqkv);
  }
  omp_set_num_threads(saved);
}

TEST_CASE("short attention backward accumulates: twice from zero is the double of once") {
  const Shape s{2, 12, 2, 8};
  const auto qkv = kt::random_qkv(s, 31);
  const auto g = kt::random_floats(s.out_size(), 32);
  std::vector<float> out(s.out_size()), lse(s.lse_size());
  short_attention_forward(out.data(), lse.data(), qkv.data(), s.B, s.T, s.H, s.d);
  std::vector<float> once(qkv.size(), 0.0f), twice(qkv.size(), 0.0f);
  short_attention_backward(once.data(), g.data(), out.data(), lse.data(), qkv.data(), s.B, s.T, s.H,
                           s.d);
  for (int run = 0; run < 2; ++run)
    short_attention_backward(twice.data(), g.data(), out.data(), lse.data(), qkv.data(), s.B, s.T,
                             s.H, s.d);
  for (float& x : once) x *= 2.0f;  // exact, as is x + x
  CHECK(twice == once);
}

TEST_CASE("short attention: empty batches write nothing") {
  std::vector<float> buf(8, 7.0f);
  short_attention_forward(buf.data(), buf.data(), buf.data(), 0, 5, 2, 4);
  short_attention_forward(buf.data(), buf.data(), buf.data(), 2, 0, 2, 4);
  short_attention_backward(buf.data(), buf.data(), buf.data(), buf.data(), buf.data(), 2, 5, 0, 4);
  CHECK(buf == std::vector<float>(8, 7.0f));
}

TEST_CASE("short_attention_fits: the CUDA kernels' limits") {
  static_assert(short_attention_fits(256, 64) && short_attention_fits(256, 1));
  static_assert(!short_attention_fits(257, 1) && !short_attention_fits(1, 129));
  static_assert(!short_attention_fits(1, 0) && !short_attention_fits(-1, 8));
  static_assert(short_attention_fits(0, 8));  // an empty batch
  // At d = 128 the backward's shared memory (K, V, a query tile) is the limit: T <= 125.
  static_assert(short_attention_fits(125, 128) && !short_attention_fits(126, 128));
  CHECK(short_attention_backward_smem_bytes(125, 128) <= kShortAttentionMaxSmemBytes);
  CHECK(short_attention_backward_smem_bytes(126, 128) > kShortAttentionMaxSmemBytes);
  // Every head size up to 64 takes every length up to 256 (the local models: P = 8, 32, 192);
  // the lengths that fit shrink as d grows, and the text, audio and image patches fit at the
  // widest head.
  for (int d = 1; d <= 64; ++d) CHECK_MESSAGE(short_attention_fits(256, d), "d = " << d);
  for (int d = 65; d <= 128; ++d)
    for (int T = 1; T <= 256; ++T)
      if (!short_attention_fits(T, d)) {
        CHECK_MESSAGE(!short_attention_fits(T + 1, d), "T = " << T << ", d = " << d);
        CHECK_MESSAGE(!short_attention_fits(T, d + 1), "T = " << T << ", d = " << d);
      }
  CHECK(short_attention_fits(8, 128));
  CHECK(short_attention_fits(32, 128));
  CHECK(short_attention_fits(192, 80));
  // A GPU with less shared memory per block (sm_86, sm_89: 99 KiB) takes fewer shapes: the
  // image models' local stacks (T 192, heads of 64) need 115 KiB there and go to attention.
  CHECK(short_attention_backward_smem_bytes(192, 64) == 118016);
  CHECK_FALSE(short_attention_fits(192, 64, 99 * 1024));
  CHECK(short_attention_fits(32, 64, 99 * 1024));
}

TEST_CASE("short attention: shapes that do not fit throw, naming T and d") {
  std::vector<float> buf(16, 0.0f);
  float* p = buf.data();
  auto message = [](auto&& call) -> std::string {
    try {
      call();
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "(nothing thrown)";
  };
  for (const std::pair<int, int>& shape : {std::pair{257, 8}, std::pair{126, 128},
                                           std::pair{4, 129}, std::pair{4, 0}, std::pair{-1, 8}}) {
    // Plain variables, not a structured binding: the lambdas below capture them (clang 14).
    const int T = shape.first, d = shape.second;
    CAPTURE(T);
    CAPTURE(d);
    const std::string f = message([&] { short_attention_forward(p, p, p, 1, T, 1, d); });
    const std::string b = message([&] { short_attention_backward(p, p, p, p, p, 1, T, 1, d); });
    for (const std::string& m : {f, b}) {
      CHECK_MESSAGE(m.find("T = " + std::to_string(T)) != std::string::npos, m);
      CHECK_MESSAGE(m.find("d = " + std::to_string(d)) != std::string::npos, m);
    }
  }
  CHECK_THROWS_AS(short_attention_forward(p, p, p, -1, 4, 1, 8), std::invalid_argument);
  CHECK_THROWS_AS(short_attention_backward(p, p, p, p, p, 1, 4, -1, 8), std::invalid_argument);
}

// The AVX-512 code (16-float vectors, on machines that have it) and the AVX2 code sum every
// output in the same order: the same bits. (On a machine without AVX-512 both runs take the
// AVX2 code.)
TEST_CASE("short attention: the AVX-512 and the AVX2 code give the same bits") {
  for (const auto& shape :
       {std::array{3, 8, 4, 32}, std::array{2, 256, 2, 64}, std::array{2, 37, 3, 20},
        std::array{2, 1, 2, 16}, std::array{3, 5, 2, 24}, std::array{1, 130, 2, 64}}) {
    // (Not a structured binding: clang 14, the sanitizer build's compiler, cannot capture one.)
    const int B = shape[0], T = shape[1], H = shape[2], d = shape[3];
    CAPTURE(T);
    CAPTURE(d);
    const std::size_t n = static_cast<std::size_t>(B) * T * H * d;
    const auto qkv = kt::random_floats(3 * n, 31);
    const auto dout = kt::random_floats(n, 32);
    std::vector<float> out[2], lse[2], dqkv[2];
    for (int v = 0; v < 2; ++v) {
      const IsaVariant variant = v == 0 ? IsaVariant::best : IsaVariant::avx2;
      out[v].assign(n, 0.0f);
      lse[v].assign(static_cast<std::size_t>(B) * H * T, 0.0f);
      dqkv[v].assign(3 * n, 0.0f);
      short_attention_forward(out[v].data(), lse[v].data(), qkv.data(), B, T, H, d, variant);
      short_attention_backward(dqkv[v].data(), dout.data(), out[v].data(), lse[v].data(),
                               qkv.data(), B, T, H, d, true, variant);
    }
    CHECK(out[0] == out[1]);
    CHECK(lse[0] == lse[1]);
    CHECK(dqkv[0] == dqkv[1]);
  }
}

TEST_CASE("attention backward: dqkv written over NaN equals dqkv added to zeros, every kernel") {
  // accumulate_dqkv false (a model's backward pass): dqkv is not read. The short kernel's
  // T <= 8 path and its tiles (both variants), the blocked kernel, its bf16 form.
  for (const Shape& s :
       {Shape{3, 5, 2, 8}, Shape{2, 8, 4, 32}, Shape{2, 40, 2, 16}, Shape{1, 100, 2, 64}}) {
    CAPTURE(s.T);
    CAPTURE(s.d);
    const auto qkv = kt::random_floats(s.qkv_size(), 71, -1.5f, 1.5f);
    const auto dout = kt::random_floats(s.out_size(), 72);
    std::vector<float> out(s.out_size()), lse(s.lse_size());
    attention_forward(out.data(), lse.data(), qkv.data(), s.B, s.T, s.H, s.d);
    const std::vector<float> nan(s.qkv_size(), std::numeric_limits<float>::quiet_NaN());
    const std::vector<float> zeros(s.qkv_size(), 0.0f);
    auto same = [&](const char* what, auto&& backward) {
      const std::string kernel = what;
      CAPTURE(kernel);
      std::vector<float> over = nan, added = zeros;
      backward(over.data(), false);
      backward(added.data(), true);
      CHECK(std::memcmp(over.data(), added.data(), over.size() * sizeof(float)) == 0);
      CHECK(added != zeros);
    };
    for (const IsaVariant variant : {IsaVariant::best, IsaVariant::avx2})
      same("short", [&](float* g, bool accumulate) {
        short_attention_backward(g, dout.data(), out.data(), lse.data(), qkv.data(), s.B, s.T, s.H,
                                 s.d, accumulate, variant);
      });
    same("blocked", [&](float* g, bool accumulate) {
      attention_backward(g, dout.data(), out.data(), lse.data(), qkv.data(), s.B, s.T, s.H, s.d,
                         accumulate);
    });
    if (s.d % 16 == 0)  // the bf16 kernel's heads
      same("blocked bf16", [&](float* g, bool accumulate) {
        attention_backward_bf16(g, dout.data(), out.data(), lse.data(), qkv.data(), s.B, s.T, s.H,
                                s.d, accumulate);
      });
  }
}
