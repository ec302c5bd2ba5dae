// bias_gelu_* / bias_relu_* against a double reference and finite differences.
#include "check.hpp"

#include "cpu/activation.hpp"
#include "cpu/bf16.hpp"

#include <cstring>
#include <limits>
#include <numbers>
#include <stdexcept>

#include <omp.h>

using namespace mb::kernels::cpu;

namespace {

enum class Act { gelu, relu };

template <class T>
std::vector<T> ref_act(Act act, const std::vector<T>& x, const std::vector<T>& b, int N, int C) {
  std::vector<T> out(x.size());
  for (int r = 0; r < N; ++r)
    for (int i = 0; i < C; ++i) {
      const double v =
          static_cast<double>(x[static_cast<std::size_t>(r) * C + i]) + static_cast<double>(b[i]);
      const double y = act == Act::relu ? std::max(v, 0.0)
                                        : 0.5 * v *
                                              (1.0 + std::tanh(std::sqrt(2.0 / std::numbers::pi) *
                                                               (v + 0.044715 * v * v * v)));
      out[static_cast<std::size_t>(r) * C + i] = static_cast<T>(y);
    }
  return out;
}

void forward(Act act, float* out, const float* inp, const float* b, int N, int C) {
  if (act == Act::gelu)
    bias_gelu_forward(out, inp, b, N, C);
  else
    bias_relu_forward(out, inp, b, N, C);
}

void backward(Act act, float* dinp, float* db, const float* dout, const float* inp, const float* b,
              int N, int C, const std::uint16_t* inp_bf16 = nullptr, bool accumulate_dinp = true) {
  if (act == Act::gelu)
    bias_gelu_backward(dinp, db, dout, inp, inp_bf16, b, N, C, accumulate_dinp);
  else
    bias_relu_backward(dinp, db, dout, inp, inp_bf16, b, N, C, accumulate_dinp);
}

void check_case(Act act, int N, int C, std::uint32_t seed) {
  const std::size_t n = static_cast<std::size_t>(N) * C;
  auto x = kt::random_floats(n, seed, -3.0f, 3.0f);
  auto b = kt::random_floats(C, seed + 1, -0.5f, 0.5f);
  // Keep every pre-activation away from ReLU's kink, where finite differences are undefined.
  for (int r = 0; r < N; ++r)
    for (int i = 0; i < C; ++i) {
      float& v = x[static_cast<std::size_t>(r) * C + i];
      if (std::fabs(v + b[i]) < 0.05f) v += 0.1f;
    }
  std::vector<float> out(n);
  forward(act, out.data(), x.data(), b.data(), N, C);
  auto xd = kt::to_double(x), bd = kt::to_double(b);
  kt::check_close(out, ref_act(act, xd, bd, N, C), 1e-5, 1e-6, "activation out");

  std::vector<float> out_nb(n), zero(C, 0.0f);
  forward(act, out_nb.data(), x.data(), nullptr, N, C);
  kt::check_close(out_nb, ref_act(act, xd, kt::to_double(zero), N, C), 1e-5, 1e-6,
                  "activation out (no bias)");

  auto g = kt::random_floats(n, seed + 2);
  auto dx0 = kt::random_floats(n, seed + 3), db0 = kt::random_floats(C, seed + 4);
  auto dx = dx0, db = db0;
  backward(act, dx.data(), db.data(), g.data(), x.data(), b.data(), N, C);
  auto nx = kt::numeric_grad(
      xd,
      [&](const std::vector<double>& v) { return kt::weighted_sum(ref_act(act, v, bd, N, C), g); },
      1e-5);
  auto nb = kt::numeric_grad(
      bd,
      [&](const std::vector<double>& v) { return kt::weighted_sum(ref_act(act, xd, v, N, C), g); },
      1e-5);
  for (std::size_t i = 0; i < n; ++i) nx[i] += dx0[i];
  for (int i = 0; i < C; ++i) nb[i] += db0[i];
  kt::check_close(dx, nx, 1e-3, 1e-4, "activation dinp");
  kt::check_close(db, nb, 1e-3, 1e-4, "activation dbias");
}

}  // namespace

TEST_CASE("bias + gelu: forward and finite-difference backward") {
  check_case(Act::gelu, 1, 1, 1);
  check_case(Act::gelu, 3, 17, 2);
  check_case(Act::gelu, 70, 9, 3);  // three row tasks, the last one partial
}

TEST_CASE("bias + relu: forward and finite-difference backward") {
  check_case(Act::relu, 1, 1, 11);
  check_case(Act::relu, 3, 17, 12);
  check_case(Act::relu, 70, 9, 13);
}

TEST_CASE("bias + activation: in place forward, null gradients, thread-count independence") {
  for (Act act : {Act::gelu, Act::relu}) {
    const int N = 600, C = 96;  // large enough to run threaded
    auto x = kt::random_floats(static_cast<std::size_t>(N) * C, 20, -3.0f, 3.0f);
    auto b = kt::random_floats(C, 21);
    std::vector<float> out(x.size());
    forward(act, out.data(), x.data(), b.data(), N, C);
    auto y = x;
    forward(act, y.data(), y.data(), b.data(), N, C);
    CHECK(y == out);

    auto g = kt::random_floats(x.size(), 22);
    std::vector<float> dx(x.size(), 0.0f), db(C, 0.0f), dx_only(x.size(), 0.0f);
    std::vector<float> db_only(C, 0.0f);
    backward(act, dx.data(), db.data(), g.data(), x.data(), b.data(), N, C);
    backward(act, dx_only.data(), nullptr, g.data(), x.data(), b.data(), N, C);
    backward(act, nullptr, db_only.data(), g.data(), x.data(), b.data(), N, C);
    CHECK(dx == dx_only);
    CHECK(db == db_only);

    const int saved = omp_get_max_threads();
    for (int threads : {1, 3}) {
      omp_set_num_threads(threads);
      std::vector<float> db_t(C, 0.0f);
      backward(act, nullptr, db_t.data(), g.data(), x.data(), b.data(), N, C);
      CHECK(db_t == db);
    }
    omp_set_num_threads(saved);
  }
}

TEST_CASE("bias + relu backward: dbias over many rows against a double sum") {
  const int N = 9000, C = 5;  // more rows than 256 tasks of the minimum size
  auto x = kt::random_floats(static_cast<std::size_t>(N) * C, 30);
  auto b = kt::random_floats(C, 31);
  auto g = kt::random_floats(x.size(), 32);
  std::vector<float> db(C, 0.0f);
  bias_relu_backward(nullptr, db.data(), g.data(), x.data(), nullptr, b.data(), N, C);
  std::vector<double> want(C, 0.0);
  for (int r = 0; r < N; ++r)
    for (int i = 0; i < C; ++i) {
      const std::size_t k = static_cast<std::size_t>(r) * C + i;
      if (x[k] + b[i] > 0.0f) want[i] += g[k];
    }
  kt::check_close(db, want, 1e-4, 1e-3, "relu dbias (many rows)");
}

// The backward from the pre-activation's bf16 copy is the fp32 backward at the rounded values,
// bit for bit (widening bf16 to fp32 is exact), for both destinations, at any thread count;
// the copy is read even when inp is given too, and the rounding is visible in the result.
TEST_CASE("bias + activation backward: from a bf16 copy of the pre-activation") {
  for (Act act : {Act::gelu, Act::relu}) {
    CAPTURE(static_cast<int>(act));
    const int N = 600, C = 99;  // threaded, C not a multiple of the vector width
    const std::size_t n = static_cast<std::size_t>(N) * C;
    const auto x = kt::random_floats(n, 40, -3.0f, 3.0f);
    const auto b = kt::random_floats(C, 41);
    const auto g = kt::random_floats(n, 42);
    const auto dx0 = kt::random_floats(n, 43), db0 = kt::random_floats(C, 44);
    std::vector<std::uint16_t> copy(n);
    std::vector<float> rounded(n);
    for (std::size_t i = 0; i < n; ++i) {
      copy[i] = bf16_bits(x[i]);
      rounded[i] = round_to_bf16(x[i]);
    }
    auto want_dx = dx0, want_db = db0;
    backward(act, want_dx.data(), want_db.data(), g.data(), rounded.data(), b.data(), N, C);

    const int saved = omp_get_max_threads();
    for (int threads : {1, saved}) {
      omp_set_num_threads(threads);
      auto dx = dx0, db = db0;
      backward(act, dx.data(), db.data(), g.data(), nullptr, b.data(), N, C, copy.data());
      CHECK(dx == want_dx);
      CHECK(db == want_db);
    }
    omp_set_num_threads(saved);

    // Given both, the copy is what is read.
    auto dx = dx0, db = db0;
    backward(act, dx.data(), db.data(), g.data(), x.data(), b.data(), N, C, copy.data());
    CHECK(dx == want_dx);
    CHECK(db == want_db);

    // The fp32 pre-activation gives other gradients (else this test could not fail).
    auto fp32_dx = dx0, fp32_db = db0;
    backward(act, fp32_dx.data(), fp32_db.data(), g.data(), x.data(), b.data(), N, C);
    CHECK(fp32_db != want_db);
    if (act == Act::gelu) CHECK(fp32_dx != want_dx);
  }
}

TEST_CASE("bias + activation backward: no input at all is refused") {
  std::vector<float> d(4, 0.0f), g(4, 1.0f);
  CHECK_THROWS_AS(bias_gelu_backward(d.data(), nullptr, g.data(), nullptr, nullptr, nullptr, 2, 2),
                  std::invalid_argument);
  CHECK_THROWS_AS(bias_relu_backward(d.data(), d.data(), g.data(), nullptr, nullptr, nullptr, 2, 2),
                  std::invalid_argument);
  // Nothing to compute: no error.
  bias_gelu_backward(nullptr, nullptr, g.data(), nullptr, nullptr, nullptr, 2, 2);
  bias_relu_backward(d.data(), nullptr, g.data(), nullptr, nullptr, nullptr, 0, 2);
}

TEST_CASE(
    "bias + relu backward: at the output with no bias, the bits of at the input with its bias") {
  // What a model that keeps only the ReLU's output runs (TransformerStack): act > 0 exactly where
  // inp + bias > 0, so the gradients are the same bits. Some sums are exactly 0 (inp = -bias),
  // where the gradient is 0 both ways.
  const int N = 67, C = 45;
  auto inp = kt::random_floats(static_cast<std::size_t>(N) * C, 71);
  const auto bias = kt::random_floats(C, 72);
  for (int r = 0; r < N; r += 5)
    for (int i = 0; i < C; i += 3) inp[static_cast<std::size_t>(r) * C + i] = -bias[i];
  const auto dout = kt::random_floats(inp.size(), 73);
  std::vector<float> act(inp.size());
  bias_relu_forward(act.data(), inp.data(), bias.data(), N, C);
  auto dinp_in = kt::random_floats(inp.size(), 74), dbias_in = kt::random_floats(C, 75);
  auto dinp_out = dinp_in, dbias_out = dbias_in;
  bias_relu_backward(dinp_in.data(), dbias_in.data(), dout.data(), inp.data(), nullptr, bias.data(),
                     N, C);
  bias_relu_backward(dinp_out.data(), dbias_out.data(), dout.data(), act.data(), nullptr, nullptr,
                     N, C);
  CHECK(dinp_out == dinp_in);
  CHECK(dbias_out == dbias_in);
}

TEST_CASE("bias + activation backward: dinp written over NaN equals dinp added to zeros") {
  // accumulate_dinp false (the model's input gradients): dinp is not read; dbias still adds.
  for (const Act act : {Act::gelu, Act::relu})
    for (const bool bf16_input : {false, true}) {
      CAPTURE(static_cast<int>(act));
      CAPTURE(bf16_input);
      const int N = 300, C = 130;  // threaded, and a partial column block
      const std::size_t n = static_cast<std::size_t>(N) * C;
      const auto x = kt::random_floats(n, 61, -3.0f, 3.0f), g = kt::random_floats(n, 62);
      const auto b = kt::random_floats(C, 63), db0 = kt::random_floats(C, 64);
      std::vector<std::uint16_t> patterns(n);
      for (std::size_t i = 0; i < n; ++i) patterns[i] = bf16_bits(x[i]);
      const std::uint16_t* xp = bf16_input ? patterns.data() : nullptr;
      std::vector<float> set(n, std::numeric_limits<float>::quiet_NaN()), db1 = db0;
      backward(act, set.data(), db1.data(), g.data(), x.data(), b.data(), N, C, xp, false);
      std::vector<float> added(n, 0.0f), db2 = db0;
      backward(act, added.data(), db2.data(), g.data(), x.data(), b.data(), N, C, xp, true);
      CHECK(std::memcmp(set.data(), added.data(), n * sizeof(float)) == 0);
      CHECK(std::memcmp(db1.data(), db2.data(), C * sizeof(float)) == 0);
    }
}
