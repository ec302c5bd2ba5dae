// round_to_bf16 / bf16_bits on hand-picked bit patterns and against an independent reference,
// and the bf16 matmul pair (matmul_forward_bf16 / matmul_backward_bf16) against plain loops in
// double over bf16-rounded operands.
//
// Tolerances of the matmul checks: the products of two bf16 values are exact in fp32 and in
// double, so the op and the reference add the same terms, the op in fp32 (oneDNN's order), the
// reference in double. Every element must satisfy |got - want| <= 1e-5 · (|want| + max |want|
// of its output row): with inputs in [-1, 1] and K up to 515 the fp32 rounding error of such a
// sum is a few ulps of the row's magnitude (~1e-6 relative). Not rounding the operands at all
// would change each product by up to 2^-8 relative, about 1e-3 of the row's magnitude at these
// sizes, a hundred times the tolerance; every check also verifies that its shapes make this
// difference visible (the unrounded reference must fail the same tolerance).
#include "check.hpp"

#include "cpu/bf16.hpp"
#include "cpu/matmul.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

using namespace mb::kernels::cpu;

namespace {

float from_bits(std::uint32_t u) { return std::bit_cast<float>(u); }
std::uint32_t to_bits(float f) { return std::bit_cast<std::uint32_t>(f); }

// Both functions on one input: bf16_bits gives `want`, round_to_bf16 the float whose upper
// half it is and whose lower half is zero.
void check_round(std::uint32_t in, std::uint16_t want) {
  CAPTURE(in);
  const float x = from_bits(in);
  CHECK(bf16_bits(x) == want);
  CHECK(to_bits(round_to_bf16(x)) == static_cast<std::uint32_t>(want) << 16);
}

// Independent reference for a non-NaN pattern: the two bf16 neighbours of x are its
// truncation (toward zero) and the next pattern away from zero; pick the nearer in double,
// the even one on a tie. Past the largest finite bf16 the next pattern is inf, which IEEE 754
// places at 2^128 for this purpose (so max + half an ulp, a tie, rounds to inf).
std::uint16_t ref_bf16(std::uint32_t u) {
  const std::uint32_t lo = u & 0xFFFF0000u;
  if ((u & 0xFFFFu) == 0) return static_cast<std::uint16_t>(lo >> 16);
  const std::uint32_t hi = lo + 0x10000u;  // one bf16 ulp further from zero (or inf)
  const double x = from_bits(u), a = from_bits(lo);
  const double b = (hi & 0x7FFFFFFFu) == 0x7F800000u ? std::copysign(std::ldexp(1.0, 128), x)
                                                     : static_cast<double>(from_bits(hi));
  const double da = std::fabs(x - a), db = std::fabs(b - x);
  std::uint32_t r;
  if (da < db)
    r = lo;
  else if (db < da)
    r = hi;
  else
    r = ((lo >> 16) & 1u) == 0 ? lo : hi;
  return static_cast<std::uint16_t>(r >> 16);
}

}  // namespace

TEST_CASE("round_to_bf16: exact bf16 values are unchanged") {
  check_round(0x3F800000u, 0x3F80);  // 1
  check_round(0xC0200000u, 0xC020);  // -2.5
  check_round(0x3F810000u, 0x3F81);  // 1 + 2^-7
  check_round(0x00800000u, 0x0080);  // smallest normal
  check_round(0x00010000u, 0x0001);  // a denormal that is a bf16 denormal
  check_round(0x00000000u, 0x0000);  // +0
  check_round(0x80000000u, 0x8000);  // -0 keeps its sign
  CHECK(std::signbit(round_to_bf16(-0.0f)));
}

TEST_CASE("round_to_bf16: round to nearest, ties to even, both ways") {
  check_round(0x3F808000u, 0x3F80);  // 1 + 2^-8: tie, 0x3F80 is even -> down
  check_round(0x3F818000u, 0x3F82);  // tie, 0x3F81 is odd -> up
  check_round(0xBF808000u, 0xBF80);  // negative tie, even -> toward zero
  check_round(0xBF818000u, 0xBF82);  // negative tie, odd -> away from zero
  check_round(0x3F808001u, 0x3F81);  // just above the tie -> up
  check_round(0x3F807FFFu, 0x3F80);  // just below the tie -> down
  check_round(0x3F80FFFFu, 0x3F81);
  check_round(0x3FFF8000u, 0x4000);  // odd tie carries into the exponent: 1.9921875.. -> 2
}

TEST_CASE("round_to_bf16: the largest finite values, overflow to inf, inf and NaN") {
  check_round(0x7F7F0000u, 0x7F7F);  // largest bf16 (3.3895e38)
  check_round(0xFF7F0000u, 0xFF7F);
  check_round(0x7F7F7FFFu, 0x7F7F);  // below half an ulp above it -> stays finite
  check_round(0x7F7F8000u, 0x7F80);  // the tie (0x7F7F is odd) -> +inf
  check_round(0x7F7FFFFFu, 0x7F80);  // FLT_MAX -> +inf
  check_round(0xFF7FFFFFu, 0xFF80);  // -FLT_MAX -> -inf
  check_round(0x7F800000u, 0x7F80);  // +inf
  check_round(0xFF800000u, 0xFF80);  // -inf
  // Every NaN becomes the canonical quiet NaN, as CUDA's __float2bfloat16_rn; in particular
  // a NaN whose payload lies only in the lower 16 bits must not round to inf.
  for (std::uint32_t nan : {0x7FC00000u, 0x7F800001u, 0xFF800001u, 0x7FBFFFFFu, 0xFFFFFFFFu,
                            0x7F80FFFFu, 0xFFC00000u}) {
    check_round(nan, 0x7FFF);
    CHECK(std::isnan(round_to_bf16(from_bits(nan))));
  }
  CHECK(std::isnan(round_to_bf16(std::numeric_limits<float>::quiet_NaN())));
  CHECK(std::isnan(round_to_bf16(std::numeric_limits<float>::signaling_NaN())));
}

TEST_CASE("round_to_bf16: denormals") {
  check_round(0x00018000u, 0x0002);  // tie, odd -> up
  check_round(0x00008000u, 0x0000);  // tie, even -> +0
  check_round(0x00008001u, 0x0001);  // just above the tie
  check_round(0x007FFFFFu, 0x0080);  // largest denormal -> smallest normal
  check_round(0x80000001u, 0x8000);  // smallest negative denormal -> -0
  check_round(0x807FFFFFu, 0x8080);
}

TEST_CASE("round_to_bf16: random bit patterns against a reference in double") {
  std::mt19937 gen(2024);
  std::size_t checked = 0;
  for (int i = 0; i < 400000; ++i) {
    std::uint32_t u = static_cast<std::uint32_t>(gen());
    if (i % 4 == 0) u = (u & 0xFFFF0000u) | 0x8000u;  // many exact ties
    const float x = from_bits(u);
    if (std::isnan(x)) continue;
    const std::uint16_t want = ref_bf16(u);
    if (bf16_bits(x) != want || to_bits(round_to_bf16(x)) != static_cast<std::uint32_t>(want)
                                                                 << 16) {
      FAIL_CHECK("bits " << u << ": got " << bf16_bits(x) << ", want " << want);
      break;
    }
    ++checked;
  }
  CHECK(checked > 350000);
}

namespace {

std::vector<float> rounded(const std::vector<float>& v) {
  std::vector<float> r(v.size());
  std::transform(v.begin(), v.end(), r.begin(), [](float x) { return round_to_bf16(x); });
  return r;
}

// |got - want| <= rel · (|want| + max |want| of the row) for a rows × cols result; see the
// header. Returns the number of violations (0 for a pass) without reporting them.
template <class G>
std::size_t count_bad(const std::vector<G>& got, const std::vector<double>& want, int rows,
                      int cols, double rel) {
  std::size_t bad = 0;
  for (int r = 0; r < rows; ++r) {
    double mx = 0.0;
    for (int c = 0; c < cols; ++c)
      mx = std::max(mx, std::fabs(want[static_cast<std::size_t>(r) * cols + c]));
    for (int c = 0; c < cols; ++c) {
      const std::size_t i = static_cast<std::size_t>(r) * cols + c;
      const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
      if (!(err <= rel * (std::fabs(want[i]) + mx))) ++bad;
    }
  }
  return bad;
}

constexpr double kRel = 1e-5;

void check_rows(const std::vector<float>& got, const std::vector<double>& want, int rows, int cols,
                const char* what) {
  REQUIRE(got.size() == want.size());
  CHECK_MESSAGE(count_bad(got, want, rows, cols, kRel) == 0, what << ": out of tolerance");
}

// The unrounded reference must fail the same tolerance somewhere: the shape makes the
// rounding of the operands visible (skipped for tiny outputs where it may happen not to).
void check_sensitive(const std::vector<double>& unrounded, const std::vector<double>& want,
                     int rows, int cols, const char* what) {
  if (static_cast<std::size_t>(rows) * cols < 16) return;
  CHECK_MESSAGE(count_bad(unrounded, want, rows, cols, kRel) > 0,
                what << ": the test cannot tell bf16 operands from fp32 ones");
}

// out = inp · wᵀ (+ bias) in double; inp [M,K], w [N,K].
std::vector<double> ref_forward(const std::vector<float>& inp, const std::vector<float>& w,
                                const float* bias, int M, int K, int N) {
  std::vector<double> out(static_cast<std::size_t>(M) * N);
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double s = bias ? static_cast<double>(bias[j]) : 0.0;
      for (int k = 0; k < K; ++k)
        s += static_cast<double>(inp[static_cast<std::size_t>(i) * K + k]) *
             w[static_cast<std::size_t>(j) * K + k];
      out[static_cast<std::size_t>(i) * N + j] = s;
    }
  return out;
}

// dinp0 + g · w, [M,K]; g [M,N], w [N,K].
std::vector<double> ref_dinp(const std::vector<float>& dinp0, const std::vector<float>& g,
                             const std::vector<float>& w, int M, int K, int N) {
  std::vector<double> out(dinp0.begin(), dinp0.end());
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      const double gij = g[static_cast<std::size_t>(i) * N + j];
      for (int k = 0; k < K; ++k)
        out[static_cast<std::size_t>(i) * K + k] += gij * w[static_cast<std::size_t>(j) * K + k];
    }
  return out;
}

// dw0 + gᵀ · inp, [N,K]; g [M,N], inp [M,K].
std::vector<double> ref_dweight(const std::vector<float>& dw0, const std::vector<float>& g,
                                const std::vector<float>& inp, int M, int K, int N) {
  std::vector<double> out(dw0.begin(), dw0.end());
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      const double gij = g[static_cast<std::size_t>(i) * N + j];
      for (int k = 0; k < K; ++k)
        out[static_cast<std::size_t>(j) * K + k] += gij * inp[static_cast<std::size_t>(i) * K + k];
    }
  return out;
}

void check_pair(int M, int K, int N, bool with_bias, std::uint32_t seed) {
  CAPTURE(M);
  CAPTURE(K);
  CAPTURE(N);
  CAPTURE(with_bias);
  const std::size_t nMK = static_cast<std::size_t>(M) * K, nNK = static_cast<std::size_t>(N) * K,
                    nMN = static_cast<std::size_t>(M) * N;
  const auto inp = kt::random_floats(nMK, seed), w = kt::random_floats(nNK, seed + 1);
  const auto b = kt::random_floats(static_cast<std::size_t>(N), seed + 2);
  const auto rinp = rounded(inp), rw = rounded(w);
  const float* bias = with_bias ? b.data() : nullptr;

  // Forward: out is overwritten.
  std::vector<float> out(nMN, 123.0f);
  matmul_forward_bf16(out.data(), inp.data(), nullptr, w.data(), nullptr, bias, M, K, N);
  const auto want = ref_forward(rinp, rw, bias, M, K, N);
  check_rows(out, want, M, N, "bf16 forward");
  check_sensitive(ref_forward(inp, w, bias, M, K, N), want, M, N, "bf16 forward");

  // Backward, accumulating into random non-zero gradients.
  const auto g = kt::random_floats(nMN, seed + 3);
  const auto rg = rounded(g);
  const auto dinp0 = kt::random_floats(nMK, seed + 4), dw0 = kt::random_floats(nNK, seed + 5);
  const auto db0 = kt::random_floats(static_cast<std::size_t>(N), seed + 6);
  auto dinp = dinp0, dw = dw0, db = db0;
  matmul_backward_bf16(dinp.data(), dw.data(), db.data(), g.data(), inp.data(), nullptr, w.data(),
                       nullptr, M, K, N);

  const auto want_dinp = ref_dinp(dinp0, rg, rw, M, K, N);
  const auto want_dw = ref_dweight(dw0, rg, rinp, M, K, N);
  check_rows(dinp, want_dinp, M, K, "bf16 dinp");
  check_rows(dw, want_dw, N, K, "bf16 dweight");
  check_sensitive(ref_dinp(dinp0, g, w, M, K, N), want_dinp, M, K, "bf16 dinp");
  check_sensitive(ref_dweight(dw0, g, inp, M, K, N), want_dw, N, K, "bf16 dweight");

  // dbias: column sums of the unrounded dout, the very code of the fp32 op.
  std::vector<double> want_db(db0.begin(), db0.end());
  for (std::size_t i = 0; i < nMN; ++i) want_db[i % static_cast<std::size_t>(N)] += g[i];
  check_rows(db, want_db, 1, N, "bf16 dbias");
  auto db_fp32 = db0;
  matmul_backward(nullptr, nullptr, db_fp32.data(), g.data(), nullptr, nullptr, M, K, N);
  CHECK(db == db_fp32);

  // Each destination alone, with the operands it does not need passed as null: the same
  // bits as the full call.
  auto o_dinp = dinp0, o_dw = dw0, o_db = db0;
  matmul_backward_bf16(o_dinp.data(), nullptr, nullptr, g.data(), nullptr, nullptr, w.data(),
                       nullptr, M, K, N);
  matmul_backward_bf16(nullptr, o_dw.data(), nullptr, g.data(), inp.data(), nullptr, nullptr,
                       nullptr, M, K, N);
  matmul_backward_bf16(nullptr, nullptr, o_db.data(), g.data(), nullptr, nullptr, nullptr, nullptr,
                       M, K, N);
  matmul_backward_bf16(nullptr, nullptr, nullptr, g.data(), nullptr, nullptr, nullptr, nullptr, M,
                       K, N);
  CHECK(o_dinp == dinp);
  CHECK(o_dw == dw);
  CHECK(o_db == db);
}

}  // namespace

TEST_CASE("matmul bf16: odd shapes against double loops over rounded operands") {
  std::uint32_t seed = 1000;
  for (const auto& [M, K, N] : std::vector<std::array<int, 3>>{
           {1, 1, 1}, {3, 5, 7}, {7, 13, 5}, {9, 2, 1}, {33, 17, 65}, {3, 300, 2}, {5, 9, 70}})
    for (bool with_bias : {true, false}) check_pair(M, K, N, with_bias, seed += 10);
}

TEST_CASE("matmul bf16: a bigger odd shape (300 x 515 x 259)") {
  check_pair(300, 515, 259, true, 2000);
}

TEST_CASE("matmul bf16: one product term is exact") {
  // K = 1, no bias: out[i, j] = bf16(x_i) · bf16(w_j), a single exact product.
  const int M = 13, N = 11;
  const auto x = kt::random_floats(M, 3000), w = kt::random_floats(N, 3001);
  std::vector<float> out(static_cast<std::size_t>(M) * N);
  matmul_forward_bf16(out.data(), x.data(), nullptr, w.data(), nullptr, nullptr, M, 1, N);
  std::size_t bad = 0, differs_fp32 = 0;
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      const float o = out[static_cast<std::size_t>(i) * N + j];
      bad += o != round_to_bf16(x[i]) * round_to_bf16(w[j]);
      differs_fp32 += o != x[i] * w[j];
    }
  CHECK(bad == 0);
  CHECK(differs_fp32 > 0);
}

TEST_CASE("matmul bf16: operands that are already bf16 give the fp32 op's bits") {
  const int M = 37, K = 129, N = 65;
  const auto inp = rounded(kt::random_floats(static_cast<std::size_t>(M) * K, 4000));
  const auto w = rounded(kt::random_floats(static_cast<std::size_t>(N) * K, 4001));
  const auto b = kt::random_floats(N, 4002);
  const auto g = rounded(kt::random_floats(static_cast<std::size_t>(M) * N, 4003));
  std::vector<float> out16(static_cast<std::size_t>(M) * N), out32(out16.size());
  matmul_forward_bf16(out16.data(), inp.data(), nullptr, w.data(), nullptr, b.data(), M, K, N);
  matmul_forward(out32.data(), inp.data(), w.data(), b.data(), M, K, N);
  CHECK(out16 == out32);
  std::vector<float> dinp16(inp.size(), 0.5f), dw16(w.size(), -0.25f), db16(N, 1.0f);
  auto dinp32 = dinp16, dw32 = dw16, db32 = db16;
  matmul_backward_bf16(dinp16.data(), dw16.data(), db16.data(), g.data(), inp.data(), nullptr,
                       w.data(), nullptr, M, K, N);
  matmul_backward(dinp32.data(), dw32.data(), db32.data(), g.data(), inp.data(), w.data(), M, K, N);
  CHECK(dinp16 == dinp32);
  CHECK(dw16 == dw32);
  CHECK(db16 == db32);
}

TEST_CASE("matmul bf16: K = 0 gives the bias, M = 0 or N = 0 touches nothing, negative throws") {
  std::vector<float> b{1.0f, -2.0f, 3.0f}, out(6, 9.0f);
  matmul_forward_bf16(out.data(), nullptr, nullptr, nullptr, nullptr, b.data(), 2, 0, 3);
  CHECK(out == std::vector<float>{1.0f, -2.0f, 3.0f, 1.0f, -2.0f, 3.0f});
  matmul_forward_bf16(out.data(), nullptr, nullptr, nullptr, nullptr, nullptr, 2, 0, 3);
  CHECK(out == std::vector<float>(6, 0.0f));
  std::vector<float> untouched(6, 7.0f), x(6, 1.0f);
  matmul_forward_bf16(untouched.data(), x.data(), nullptr, x.data(), nullptr, x.data(), 0, 2, 3);
  matmul_forward_bf16(untouched.data(), x.data(), nullptr, x.data(), nullptr, x.data(), 2, 3, 0);
  matmul_backward_bf16(untouched.data(), untouched.data(), untouched.data(), x.data(), x.data(),
                       nullptr, x.data(), nullptr, 0, 2, 3);
  CHECK(untouched == std::vector<float>(6, 7.0f));
  // K = 0 backward: only dbias changes.
  std::vector<float> db(3, 1.0f), g{1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f};
  matmul_backward_bf16(nullptr, nullptr, db.data(), g.data(), nullptr, nullptr, nullptr, nullptr, 2,
                       0, 3);
  CHECK(db == std::vector<float>{6.0f, 8.0f, 10.0f});
  CHECK_THROWS_AS(
      matmul_forward_bf16(out.data(), x.data(), nullptr, x.data(), nullptr, nullptr, -1, 2, 3),
      std::invalid_argument);
  CHECK_THROWS_AS(matmul_backward_bf16(out.data(), nullptr, nullptr, x.data(), x.data(), nullptr,
                                       x.data(), nullptr, 2, -2, 3),
                  std::invalid_argument);
  // An operand that is needed but given neither as fp32 values nor as a bf16 copy.
  CHECK_THROWS_AS(
      matmul_forward_bf16(out.data(), nullptr, nullptr, x.data(), nullptr, nullptr, 2, 1, 3),
      std::invalid_argument);
  CHECK_THROWS_AS(
      matmul_forward_bf16(out.data(), x.data(), nullptr, nullptr, nullptr, nullptr, 2, 1, 3),
      std::invalid_argument);
  CHECK_THROWS_AS(matmul_backward_bf16(out.data(), nullptr, nullptr, g.data(), x.data(), nullptr,
                                       nullptr, nullptr, 2, 1, 3),
                  std::invalid_argument);
  CHECK_THROWS_AS(matmul_backward_bf16(nullptr, out.data(), nullptr, g.data(), nullptr, nullptr,
                                       x.data(), nullptr, 2, 1, 3),
                  std::invalid_argument);
}

namespace {

std::vector<std::uint16_t> bf16_copy(const std::vector<float>& v) {
  std::vector<std::uint16_t> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = bf16_bits(v[i]);
  return out;
}

}  // namespace

TEST_CASE("to_bf16 (the CPU twin of cuda::to_bf16): every element's bits, zero padding") {
  const std::size_t rows = 3, cols = 5, ld = 8;
  auto src = kt::random_floats(rows * cols, 5000);
  src[1] = std::numeric_limits<float>::infinity();
  src[7] = std::numeric_limits<float>::quiet_NaN();
  src[9] = from_bits(0x3F808000u);  // a tie: rounds to even (0x3F80)
  std::vector<std::uint16_t> dst(rows * ld, 0xABCD);
  to_bf16(dst.data(), src.data(), rows, cols, ld);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < ld; ++c) {
      CAPTURE(r);
      CAPTURE(c);
      CHECK(dst[r * ld + c] == (c < cols ? bf16_bits(src[r * cols + c]) : 0));
    }
  CHECK(dst[9 / cols * ld + 9 % cols] == 0x3F80);
  CHECK(dst[7 / cols * ld + 7 % cols] == 0x7FFF);
  // One long row (the whole parameter buffer of a model) crosses the threads' chunks.
  const auto flat = kt::random_floats(100003, 5001);
  std::vector<std::uint16_t> out(flat.size());
  to_bf16(out.data(), flat.data(), 1, flat.size(), flat.size());
  CHECK(out == bf16_copy(flat));
  for (std::size_t i = 0; i < 1000; ++i) CHECK(bf16_value(out[i]) == round_to_bf16(flat[i]));
  CHECK_THROWS_AS(to_bf16(dst.data(), src.data(), rows, cols, cols - 1), std::invalid_argument);
}

TEST_CASE("from_bf16 (the CPU twin of cuda::from_bf16): every pattern widens exactly") {
  // All 65536 patterns, NaNs included (bits kept), repeated to cross the threads' chunks.
  const std::size_t n = std::size_t{65536} * 3 + 7;
  std::vector<std::uint16_t> src(n);
  for (std::size_t i = 0; i < n; ++i) src[i] = static_cast<std::uint16_t>(i);
  std::vector<float> dst(n + 1, 7.0f);
  from_bf16(dst.data(), src.data(), n);
  std::size_t bad = 0;
  for (std::size_t i = 0; i < n; ++i)
    bad += std::bit_cast<std::uint32_t>(dst[i]) != static_cast<std::uint32_t>(src[i]) << 16;
  CHECK(bad == 0);
  CHECK(dst[n] == 7.0f);  // nothing past n
  // The round trip through to_bf16 is round_to_bf16.
  const auto x = kt::random_floats(5000, 5002);
  std::vector<std::uint16_t> bits(x.size());
  to_bf16(bits.data(), x.data(), 1, x.size(), x.size());
  std::vector<float> back(x.size());
  from_bf16(back.data(), bits.data(), x.size());
  for (std::size_t i = 0; i < x.size(); ++i) CHECK(back[i] == round_to_bf16(x[i]));
  from_bf16(nullptr, nullptr, 0);  // nothing to do
}

TEST_CASE("matmul bf16: operands' bf16 copies are what the products read, with the same result") {
  const int M = 19, K = 40, N = 23;
  const auto inp = kt::random_floats(static_cast<std::size_t>(M) * K, 5100);
  const auto w = kt::random_floats(static_cast<std::size_t>(N) * K, 5101);
  const auto b = kt::random_floats(N, 5102);
  const auto g = kt::random_floats(static_cast<std::size_t>(M) * N, 5103);
  const auto copy = bf16_copy(w);

  // The copy of w gives the very bits of rounding w.
  std::vector<float> rounded_out(static_cast<std::size_t>(M) * N), copy_out(rounded_out.size());
  matmul_forward_bf16(rounded_out.data(), inp.data(), nullptr, w.data(), nullptr, b.data(), M, K,
                      N);
  matmul_forward_bf16(copy_out.data(), inp.data(), nullptr, w.data(), copy.data(), b.data(), M, K,
                      N);
  CHECK(copy_out == rounded_out);
  std::vector<float> dinp_r(inp.size(), 0.5f), dw_r(w.size(), -0.25f), db_r(N, 1.0f);
  auto dinp_c = dinp_r, dw_c = dw_r, db_c = db_r;
  matmul_backward_bf16(dinp_r.data(), dw_r.data(), db_r.data(), g.data(), inp.data(), nullptr,
                       w.data(), nullptr, M, K, N);
  matmul_backward_bf16(dinp_c.data(), dw_c.data(), db_c.data(), g.data(), inp.data(), nullptr,
                       w.data(), copy.data(), M, K, N);
  CHECK(dinp_c == dinp_r);
  CHECK(dw_c == dw_r);
  CHECK(db_c == db_r);

  // The copy, not w, is read: a copy of 2w gives the products of 2w (doubling is exact).
  std::vector<float> w2(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) w2[i] = 2.0f * w[i];
  const auto copy2 = bf16_copy(w2);
  std::vector<float> want(rounded_out.size()), got(rounded_out.size());
  matmul_forward_bf16(want.data(), inp.data(), nullptr, w2.data(), nullptr, nullptr, M, K, N);
  matmul_forward_bf16(got.data(), inp.data(), nullptr, w.data(), copy2.data(), nullptr, M, K, N);
  CHECK(got == want);
  std::vector<float> dinp_want(inp.size(), 0.0f), dinp_got(inp.size(), 0.0f);
  matmul_backward_bf16(dinp_want.data(), nullptr, nullptr, g.data(), nullptr, nullptr, w2.data(),
                       nullptr, M, K, N);
  matmul_backward_bf16(dinp_got.data(), nullptr, nullptr, g.data(), nullptr, nullptr, w.data(),
                       copy2.data(), M, K, N);
  CHECK(dinp_got == dinp_want);

  // An input given as its bf16 copy alone (a saved activation): the same bits as rounding it.
  const auto inp_copy = bf16_copy(inp);
  std::vector<float> from_copy(rounded_out.size());
  matmul_forward_bf16(from_copy.data(), nullptr, inp_copy.data(), w.data(), nullptr, b.data(), M, K,
                      N);
  CHECK(from_copy == rounded_out);
  std::vector<float> dw_copy(w.size(), -0.25f), dw_rounded(w.size(), -0.25f);
  matmul_backward_bf16(nullptr, dw_copy.data(), nullptr, g.data(), nullptr, inp_copy.data(),
                       nullptr, nullptr, M, K, N);
  matmul_backward_bf16(nullptr, dw_rounded.data(), nullptr, g.data(), inp.data(), nullptr, nullptr,
                       nullptr, M, K, N);
  CHECK(dw_copy == dw_rounded);
}
