// matmul_forward / matmul_backward against plain loops and finite differences.
#include "check.hpp"

#include "cpu/activation.hpp"
#include "cpu/matmul.hpp"
#include "cpu/matmul_few_rows.hpp"
#include "cpu/residual.hpp"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <cmath>
#include <optional>

using namespace mb::kernels::cpu;

namespace {

// out = inp · wᵀ + bias in T, accumulating in double.
template <class T>
std::vector<T> ref_matmul(const std::vector<T>& inp, const std::vector<T>& w,
                          const std::vector<T>* bias, int M, int K, int N) {
  std::vector<T> out(static_cast<std::size_t>(M) * N);
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double s = bias ? static_cast<double>((*bias)[j]) : 0.0;
      for (int k = 0; k < K; ++k)
        s += static_cast<double>(inp[static_cast<std::size_t>(i) * K + k]) *
             static_cast<double>(w[static_cast<std::size_t>(j) * K + k]);
      out[static_cast<std::size_t>(i) * N + j] = static_cast<T>(s);
    }
  return out;
}

void check_forward(int M, int K, int N, bool with_bias, std::uint32_t seed) {
  auto inp = kt::random_floats(static_cast<std::size_t>(M) * K, seed);
  auto w = kt::random_floats(static_cast<std::size_t>(N) * K, seed + 1);
  auto b = kt::random_floats(N, seed + 2);
  std::vector<float> out(static_cast<std::size_t>(M) * N, 123.0f);  // must be overwritten
  matmul_forward(out.data(), inp.data(), w.data(), with_bias ? b.data() : nullptr, M, K, N);
  auto bd = kt::to_double(b);
  auto want = ref_matmul(kt::to_double(inp), kt::to_double(w), with_bias ? &bd : nullptr, M, K, N);
  kt::check_close(out, want, 1e-4, 1e-4, "matmul forward");
}

// Checks the analytic gradients (accumulated on top of random initial values) against central
// differences of L = sum(out * g), all in double.
void check_backward_fd(int M, int K, int N, std::uint32_t seed) {
  auto inp = kt::random_floats(static_cast<std::size_t>(M) * K, seed);
  auto w = kt::random_floats(static_cast<std::size_t>(N) * K, seed + 1);
  auto b = kt::random_floats(N, seed + 2);
  auto g = kt::random_floats(static_cast<std::size_t>(M) * N, seed + 3);
  auto dinp0 = kt::random_floats(inp.size(), seed + 4);
  auto dw0 = kt::random_floats(w.size(), seed + 5);
  auto db0 = kt::random_floats(b.size(), seed + 6);
  auto dinp = dinp0, dw = dw0, db = db0;
  matmul_backward(dinp.data(), dw.data(), db.data(), g.data(), inp.data(), w.data(), M, K, N);

  auto id = kt::to_double(inp), wd = kt::to_double(w), bd = kt::to_double(b);
  auto num_inp = kt::numeric_grad(id, [&](const std::vector<double>& x) {
    return kt::weighted_sum(ref_matmul(x, wd, &bd, M, K, N), g);
  });
  auto num_w = kt::numeric_grad(wd, [&](const std::vector<double>& x) {
    return kt::weighted_sum(ref_matmul(id, x, &bd, M, K, N), g);
  });
  auto num_b = kt::numeric_grad(bd, [&](const std::vector<double>& x) {
    return kt::weighted_sum(ref_matmul(id, wd, &x, M, K, N), g);
  });
  for (std::size_t i = 0; i < num_inp.size(); ++i) num_inp[i] += dinp0[i];
  for (std::size_t i = 0; i < num_w.size(); ++i) num_w[i] += dw0[i];
  for (std::size_t i = 0; i < num_b.size(); ++i) num_b[i] += db0[i];
  kt::check_close(dinp, num_inp, 1e-3, 1e-4, "matmul dinp");
  kt::check_close(dw, num_w, 1e-3, 1e-4, "matmul dweight");
  kt::check_close(db, num_b, 1e-3, 1e-4, "matmul dbias");
}

}  // namespace

TEST_CASE("matmul forward: odd and tiny sizes, with and without bias") {
  check_forward(1, 3, 5, true, 1);
  check_forward(1, 3, 5, false, 2);
  check_forward(1, 1, 1, true, 3);
  check_forward(7, 13, 5, true, 4);
  check_forward(33, 17, 65, false, 5);
  check_forward(3, 300, 2, true, 6);
}

namespace {

// The few-rows product (a generation step's) against the same double reference.
void check_few_rows(int M, int K, int N, bool with_bias, std::uint32_t seed) {
  auto inp = kt::random_floats(static_cast<std::size_t>(M) * K, seed);
  auto w = kt::random_floats(static_cast<std::size_t>(N) * K, seed + 1);
  auto b = kt::random_floats(N, seed + 2);
  std::vector<float> out(static_cast<std::size_t>(M) * N, 123.0f);  // must be overwritten
  matmul_few_rows_forward(out.data(), inp.data(), w.data(), with_bias ? b.data() : nullptr, M, K,
                          N);
  auto bd = kt::to_double(b);
  auto want = ref_matmul(kt::to_double(inp), kt::to_double(w), with_bias ? &bd : nullptr, M, K, N);
  kt::check_close(out, want, 1e-4, 1e-4, "matmul few rows");
}

}  // namespace

TEST_CASE(
    "matmul few rows (generation steps): every remainder of K and N, any M and thread count") {
  // 16 lanes of partial sums along K (so K % 16 leaves a tail), blocks of 4 weight rows (N % 4
  // leaves a tail), chunks of 64 weight rows shared by threads from 65,536 weights on.
  std::uint32_t seed = 100;
  for (int M : {1, 2, 3, 4, 9})
    for (int K : {1, 15, 16, 17, 33, 512})
      for (int N : {1, 3, 4, 5, 67})
        for (bool bias : {true, false}) {
          INFO("M " << M << " K " << K << " N " << N << " bias " << bias);
          check_few_rows(M, K, N, bias, seed += 3);
        }
  const int M = 3, K = 520, N = 1000;  // threaded: 520,000 weights in 16 chunks
  auto inp = kt::random_floats(static_cast<std::size_t>(M) * K, 7);
  auto w = kt::random_floats(static_cast<std::size_t>(N) * K, 8);
  auto b = kt::random_floats(N, 9);
  const int saved = omp_get_max_threads();
  std::vector<std::vector<float>> outs;
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    outs.emplace_back(static_cast<std::size_t>(M) * N);
    matmul_few_rows_forward(outs.back().data(), inp.data(), w.data(), b.data(), M, K, N);
  }
  omp_set_num_threads(saved);
  CHECK(outs[0] == outs[1]);
  CHECK(outs[0] == outs[2]);
  // A row's bits do not depend on the other rows of the call (sequences generated side by side
  // get what each would alone).
  for (int row = 0; row < M; ++row) {
    std::vector<float> one(N);
    matmul_few_rows_forward(one.data(), inp.data() + static_cast<std::size_t>(row) * K, w.data(),
                            b.data(), 1, K, N);
    CHECK(
        std::equal(one.begin(), one.end(), outs[0].begin() + static_cast<std::ptrdiff_t>(row) * N));
  }
}

TEST_CASE("matmul forward: 256x512x384 against the reference") {
  check_forward(256, 512, 384, true, 10);
}

TEST_CASE("matmul forward: cached primitives give the same answer on repeated and mixed shapes") {
  for (int rep = 0; rep < 3; ++rep) {
    check_forward(5, 9, 4, true, 20 + rep);
    check_forward(6, 9, 4, true, 30 + rep);
    check_forward(5, 9, 4, false, 40 + rep);
  }
}

TEST_CASE("matmul forward: K = 0 gives the bias, M = 0 touches nothing") {
  std::vector<float> b{1.0f, -2.0f, 3.0f}, out(6, 9.0f);
  matmul_forward(out.data(), nullptr, nullptr, b.data(), 2, 0, 3);
  CHECK(out == std::vector<float>{1.0f, -2.0f, 3.0f, 1.0f, -2.0f, 3.0f});
  matmul_forward(out.data(), nullptr, nullptr, nullptr, 2, 0, 3);
  CHECK(out == std::vector<float>(6, 0.0f));
  matmul_forward(out.data(), nullptr, nullptr, nullptr, 0, 4, 3);
  CHECK(out == std::vector<float>(6, 0.0f));
}

TEST_CASE("matmul backward: finite differences, accumulating into existing gradients") {
  check_backward_fd(1, 3, 5, 100);
  check_backward_fd(4, 7, 6, 200);
  check_backward_fd(9, 2, 1, 300);
  check_backward_fd(3, 5, 70, 400);  // more than one bias-gradient column block
}

TEST_CASE("matmul backward: 256x512x384 against plain loops") {
  const int M = 256, K = 512, N = 384;
  auto inp = kt::random_floats(static_cast<std::size_t>(M) * K, 7);
  auto w = kt::random_floats(static_cast<std::size_t>(N) * K, 8);
  auto g = kt::random_floats(static_cast<std::size_t>(M) * N, 9);
  std::vector<float> dinp(inp.size(), 0.5f), dw(w.size(), -0.25f), db(N, 1.0f);
  matmul_backward(dinp.data(), dw.data(), db.data(), g.data(), inp.data(), w.data(), M, K, N);

  std::vector<double> want_inp(inp.size()), want_w(w.size()), want_b(N);
  for (int i = 0; i < M; ++i)
    for (int k = 0; k < K; ++k) {
      double s = 0.5;
      for (int j = 0; j < N; ++j)
        s += static_cast<double>(g[static_cast<std::size_t>(i) * N + j]) *
             w[static_cast<std::size_t>(j) * K + k];
      want_inp[static_cast<std::size_t>(i) * K + k] = s;
    }
  for (int j = 0; j < N; ++j) {
    for (int k = 0; k < K; ++k) {
      double s = -0.25;
      for (int i = 0; i < M; ++i)
        s += static_cast<double>(g[static_cast<std::size_t>(i) * N + j]) *
             inp[static_cast<std::size_t>(i) * K + k];
      want_w[static_cast<std::size_t>(j) * K + k] = s;
    }
    double s = 1.0;
    for (int i = 0; i < M; ++i) s += g[static_cast<std::size_t>(i) * N + j];
    want_b[j] = s;
  }
  kt::check_close(dinp, want_inp, 1e-4, 1e-4, "matmul dinp (large)");
  kt::check_close(dw, want_w, 1e-4, 1e-4, "matmul dweight (large)");
  kt::check_close(db, want_b, 1e-4, 1e-4, "matmul dbias (large)");
}

TEST_CASE("matmul backward: null destinations are skipped") {
  const int M = 3, K = 4, N = 2;
  auto inp = kt::random_floats(M * K, 11), w = kt::random_floats(N * K, 12);
  auto g = kt::random_floats(M * N, 13);
  std::vector<float> dinp(M * K, 0.0f), dw(N * K, 0.0f), db(N, 0.0f);
  matmul_backward(dinp.data(), nullptr, nullptr, g.data(), nullptr, w.data(), M, K, N);
  matmul_backward(nullptr, dw.data(), nullptr, g.data(), inp.data(), nullptr, M, K, N);
  matmul_backward(nullptr, nullptr, db.data(), g.data(), nullptr, nullptr, M, K, N);
  std::vector<float> dinp2(M * K, 0.0f), dw2(N * K, 0.0f), db2(N, 0.0f);
  matmul_backward(dinp2.data(), dw2.data(), db2.data(), g.data(), inp.data(), w.data(), M, K, N);
  CHECK(dinp == dinp2);
  CHECK(dw == dw2);
  CHECK(db == db2);
}

TEST_CASE("matmul backward: dinp written over NaN equals dinp added to zeros, bit for bit") {
  // accumulate_dinp false (the model's input gradients): dinp is not read, and the product is
  // the one that would be added; dweight and dbias still accumulate. fp32 and bf16, threaded
  // and tiny shapes.
  for (const auto& shape :
       {std::array{1, 1, 1}, std::array{37, 129, 65}, std::array{256, 512, 384}})
    for (const bool bf16 : {false, true}) {
      const int M = shape[0], K = shape[1], N = shape[2];
      CAPTURE(M);
      CAPTURE(K);
      CAPTURE(N);
      CAPTURE(bf16);
      const auto inp = kt::random_floats(static_cast<std::size_t>(M) * K, 21);
      const auto w = kt::random_floats(static_cast<std::size_t>(N) * K, 22);
      const auto g = kt::random_floats(static_cast<std::size_t>(M) * N, 23);
      const auto dw0 = kt::random_floats(w.size(), 24), db0 = kt::random_floats(N, 25);
      auto backward = [&](std::vector<float>& dinp, std::vector<float>& dw, std::vector<float>& db,
                          bool accumulate) {
        if (bf16)
          matmul_backward_bf16(dinp.data(), dw.data(), db.data(), g.data(), inp.data(), nullptr,
                               w.data(), nullptr, M, K, N, accumulate);
        else
          matmul_backward(dinp.data(), dw.data(), db.data(), g.data(), inp.data(), w.data(), M, K,
                          N, accumulate);
      };
      std::vector<float> set(inp.size(), std::numeric_limits<float>::quiet_NaN()), dw1 = dw0,
                                                                                   db1 = db0;
      backward(set, dw1, db1, false);
      std::vector<float> added(inp.size(), 0.0f), dw2 = dw0, db2 = db0;
      backward(added, dw2, db2, true);
      CHECK(std::memcmp(set.data(), added.data(), set.size() * sizeof(float)) == 0);
      CHECK(std::memcmp(dw1.data(), dw2.data(), dw1.size() * sizeof(float)) == 0);
      CHECK(std::memcmp(db1.data(), db2.data(), db1.size() * sizeof(float)) == 0);
      CHECK(std::none_of(set.begin(), set.end(), [](float x) { return std::isnan(x); }));
    }
}

namespace {

// matmul_bias_relu_forward(_bf16) against the two ops it fuses (the bits) and against the
// double reference (the values).
void check_bias_relu(int M, int K, int N, bool with_bias, bool bf16, std::uint32_t seed) {
  CAPTURE(M);
  CAPTURE(K);
  CAPTURE(N);
  CAPTURE(with_bias);
  CAPTURE(bf16);
  const auto inp = kt::random_floats(static_cast<std::size_t>(M) * K, seed);
  const auto w = kt::random_floats(static_cast<std::size_t>(N) * K, seed + 1);
  const auto b = kt::random_floats(N, seed + 2);
  const float* bias = with_bias ? b.data() : nullptr;
  const std::size_t n = static_cast<std::size_t>(M) * N;
  std::vector<float> fused(n, 123.0f), two(n, -7.0f);  // both must be overwritten
  if (bf16) {
    matmul_bias_relu_forward_bf16(fused.data(), inp.data(), nullptr, w.data(), nullptr, bias, M, K,
                                  N);
    matmul_forward_bf16(two.data(), inp.data(), nullptr, w.data(), nullptr, nullptr, M, K, N);
  } else {
    matmul_bias_relu_forward(fused.data(), inp.data(), w.data(), bias, M, K, N);
    matmul_forward(two.data(), inp.data(), w.data(), nullptr, M, K, N);
  }
  bias_relu_forward(two.data(), two.data(), bias, M, N);
  CHECK(std::memcmp(fused.data(), two.data(), n * sizeof(float)) == 0);
  std::size_t positive = 0;
  for (float x : fused) positive += x > 0.0f;
  if (K > 0 && n > 16) {  // the ReLU cut something and kept something
    CHECK(positive > 0);
    CHECK(positive < n);
  }
  if (!bf16) {
    auto bd = kt::to_double(b);
    auto want =
        ref_matmul(kt::to_double(inp), kt::to_double(w), with_bias ? &bd : nullptr, M, K, N);
    for (double& x : want) x = std::max(x, 0.0);
    kt::check_close(fused, want, 1e-4, 1e-4, "matmul_bias_relu_forward");
  }
}

}  // namespace

TEST_CASE("matmul with bias and ReLU fused: the bits of the product, then bias_relu_forward") {
  const int threads = omp_get_max_threads();
  for (int t : {1, 2, 3}) {
    omp_set_num_threads(t);
    CAPTURE(t);
    std::uint32_t seed = 500;
    // Tiny and odd shapes, K = 0 (max(bias, 0)), and the bench model's FC1 shapes (global
    // 512 -> 2048 over 512 rows; local 128 -> 512 over 2048), where the product is blocked and
    // split among the threads.
    for (auto [M, K, N] : {std::array<int, 3>{1, 1, 1},
                           {7, 13, 5},
                           {37, 129, 65},
                           {5, 0, 3},
                           {512, 512, 2048},
                           {2048, 128, 512},
                           {300, 515, 259}})
      for (bool bias : {true, false})
        for (bool bf16 : {false, true}) check_bias_relu(M, K, N, bias, bf16, seed += 3);
  }
  omp_set_num_threads(threads);
}

TEST_CASE(
    "matmul added in place (residual fused): the bits of the product, then residual_forward") {
  // Tiny and odd shapes, K = 0 (out + bias), and the bench model's projections (global
  // 2048 -> 512 and 512 -> 512 over 512 rows; local 512 -> 128 over 2048), at 1-3 threads.
  const int threads = omp_get_max_threads();
  for (int t : {1, 2, 3}) {
    omp_set_num_threads(t);
    std::uint32_t seed = 900;
    for (const auto& shape :
         {std::array{1, 1, 1}, std::array{7, 13, 5}, std::array{37, 129, 65}, std::array{5, 0, 3},
          std::array{512, 2048, 512}, std::array{512, 512, 512}, std::array{2048, 512, 128}})
      for (const bool with_bias : {true, false})
        for (const bool bf16 : {false, true}) {
          const int M = shape[0], K = shape[1], N = shape[2];
          CAPTURE(t);
          CAPTURE(M);
          CAPTURE(K);
          CAPTURE(N);
          CAPTURE(with_bias);
          CAPTURE(bf16);
          seed += 4;
          const auto inp = kt::random_floats(static_cast<std::size_t>(M) * K, seed);
          const auto w = kt::random_floats(static_cast<std::size_t>(N) * K, seed + 1);
          const auto b = kt::random_floats(N, seed + 2);
          const float* bias = with_bias ? b.data() : nullptr;
          const std::size_t n = static_cast<std::size_t>(M) * N;
          const auto start = kt::random_floats(n, seed + 3);
          std::vector<float> fused = start, two = start, product(n, -7.0f);
          if (bf16) {
            matmul_residual_forward_bf16(fused.data(), inp.data(), nullptr, w.data(), nullptr, bias,
                                         M, K, N);
            matmul_forward_bf16(product.data(), inp.data(), nullptr, w.data(), nullptr, bias, M, K,
                                N);
          } else {
            matmul_residual_forward(fused.data(), inp.data(), w.data(), bias, M, K, N);
            matmul_forward(product.data(), inp.data(), w.data(), bias, M, K, N);
          }
          residual_forward(two.data(), two.data(), product.data(), n);
          CHECK(std::memcmp(fused.data(), two.data(), n * sizeof(float)) == 0);
          if (K > 0 || with_bias) CHECK(fused != start);  // something was added
        }
  }
  omp_set_num_threads(threads);
}
