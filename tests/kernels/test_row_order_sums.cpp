// Sums over rows into a parameter's gradient add the rows in order to the gradient itself, so
// calls on consecutive row ranges give the bits of one call (what train.local_chunk's
// bit-identical gradients rest on), at any thread count. The weight gradient is checked
// against that sequence written out, exactly; the bias, activation and layer-norm parameter
// gradients by splitting their rows.
#include "check.hpp"

#include <array>

#include "cpu/activation.hpp"
#include "cpu/layernorm.hpp"
#include "cpu/matmul.hpp"
#include "cpu/weight_gradient.hpp"

#include <omp.h>

#include <cmath>
#include <cstring>
#include <initializer_list>
#include <stdexcept>

using namespace mb::kernels::cpu;

namespace {

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The sequence of weight_gradient_in_row_order, one element at a time: a fused multiply-add
// per row where the kernel runs its FMA clones (x86-64-v3 and up), a rounded product then a
// sum otherwise.
std::vector<float> row_order_reference(std::vector<float> dweight, const std::vector<float>& dout,
                                       const std::vector<float>& inp, int M, int K, int N) {
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
  const bool fma = __builtin_cpu_supports("x86-64-v3");
#else
  const bool fma = false;
#endif
  for (int n = 0; n < N; ++n)
    for (int k = 0; k < K; ++k) {
      float acc = dweight[static_cast<std::size_t>(n) * K + k];
      for (int m = 0; m < M; ++m) {
        const float g = dout[static_cast<std::size_t>(m) * N + n];
        const float x = inp[static_cast<std::size_t>(m) * K + k];
        if (fma) {
          acc = std::fma(g, x, acc);
        } else {
          const volatile float product = g * x;  // rounded, as the default clone does
          acc = acc + product;
        }
      }
      dweight[static_cast<std::size_t>(n) * K + k] = acc;
    }
  return dweight;
}

// One call over rows [from, to) of dout and inp.
void weight_gradient_rows(std::vector<float>& dweight, const std::vector<float>& dout,
                          const std::vector<float>& inp, int K, int N, int from, int to) {
  weight_gradient_in_row_order(dweight.data(), dout.data() + static_cast<std::size_t>(from) * N,
                               inp.data() + static_cast<std::size_t>(from) * K, to - from, K, N);
}

// Runs f at 1, 2 and 3 threads; every result must have the bits of the first.
template <class F>
void same_at_any_thread_count(F&& f) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const std::vector<float> one = f();
  for (int threads : {2, 3}) {
    CAPTURE(threads);
    omp_set_num_threads(threads);
    CHECK(same_bits(f(), one));
  }
  omp_set_num_threads(saved);
}

}  // namespace

namespace {

// One call against the per-element sequence, bit for bit.
void check_exact(int M, int K, int N, IsaVariant variant) {
  CAPTURE(M);
  CAPTURE(K);
  CAPTURE(N);
  CAPTURE(variant == IsaVariant::avx2);
  const auto dout = kt::random_floats(static_cast<std::size_t>(M) * N, 1);
  const auto inp = kt::random_floats(static_cast<std::size_t>(M) * K, 2);
  const auto start = kt::random_floats(static_cast<std::size_t>(N) * K, 3);
  std::vector<float> got = start;
  weight_gradient_in_row_order(got.data(), dout.data(), inp.data(), M, K, N, variant);
  CHECK(same_bits(got, row_order_reference(start, dout, inp, M, K, N)));
}

}  // namespace

TEST_CASE("weight gradient: exactly the rows' products added in order, for every block shape") {
  // M around the 256-row block; K around the 16- and 32-column panels; N around the 24-row
  // tasks and the 12/8/4/6/2-row register blocks.
  for (int M : {0, 1, 7, 256, 300})
    for (int K : {1, 15, 16, 17, 33, 48, 70})
      for (int N : {1, 5, 24, 29, 50}) check_exact(M, K, N, IsaVariant::best);
}

TEST_CASE("weight gradient: exact with the inp panels packed and read in place") {
  // Rows longer than a column group (K > 256) are packed where dweight is wider than 256 rows
  // and read in place where it is not; both, and a second column group, on both variants.
  for (const auto& shape : {std::array{300, 300, 29}, std::array{300, 300, 270},
                            std::array{600, 530, 260}, std::array{520, 257, 256}})
    for (const IsaVariant variant : {IsaVariant::best, IsaVariant::avx2})
      check_exact(shape[0], shape[1], shape[2], variant);
}

TEST_CASE("weight gradient: the AVX-512 and the AVX2 code give the same bits") {
  // (On a machine without AVX-512 both runs take the AVX2 code.)
  for (int N : {24, 50, 128})
    for (int K : {16, 40, 64, 300}) {
      CAPTURE(N);
      CAPTURE(K);
      const int M = 700;
      const auto dout = kt::random_floats(static_cast<std::size_t>(M) * N, 24);
      const auto inp = kt::random_floats(static_cast<std::size_t>(M) * K, 25);
      const auto start = kt::random_floats(static_cast<std::size_t>(N) * K, 26);
      std::vector<float> best = start, avx2 = start;
      weight_gradient_in_row_order(best.data(), dout.data(), inp.data(), M, K, N);
      weight_gradient_in_row_order(avx2.data(), dout.data(), inp.data(), M, K, N, IsaVariant::avx2);
      CHECK(same_bits(best, avx2));
    }
}

TEST_CASE(
    "weight gradient: consecutive row ranges give the bits of one call, at any thread count") {
  const int M = 1000, K = 130, N = 200;  // threaded; K and N leave remainders
  const auto dout = kt::random_floats(static_cast<std::size_t>(M) * N, 4);
  const auto inp = kt::random_floats(static_cast<std::size_t>(M) * K, 5);
  const auto start = kt::random_floats(static_cast<std::size_t>(N) * K, 6);
  same_at_any_thread_count([&] {
    std::vector<float> whole = start;
    weight_gradient_rows(whole, dout, inp, K, N, 0, M);
    for (const auto& cuts : {std::vector<int>{0, 1, M}, std::vector<int>{0, 256, 512, M},
                             std::vector<int>{0, 8, 16, 24, 777, M}}) {
      std::vector<float> split = start;
      for (std::size_t i = 0; i + 1 < cuts.size(); ++i)
        weight_gradient_rows(split, dout, inp, K, N, cuts[i], cuts[i + 1]);
      CHECK(same_bits(split, whole));
    }
    return whole;
  });
}

TEST_CASE("weight gradient: close to a double sum on a long contraction") {
  const int M = 8192, K = 64, N = 48;
  const auto dout = kt::random_floats(static_cast<std::size_t>(M) * N, 7);
  const auto inp = kt::random_floats(static_cast<std::size_t>(M) * K, 8);
  std::vector<float> got(static_cast<std::size_t>(N) * K, 0.0f);
  weight_gradient_in_row_order(got.data(), dout.data(), inp.data(), M, K, N);
  std::vector<double> want(got.size(), 0.0);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n)
      for (int k = 0; k < K; ++k)
        want[static_cast<std::size_t>(n) * K + k] +=
            static_cast<double>(dout[static_cast<std::size_t>(m) * N + n]) *
            inp[static_cast<std::size_t>(m) * K + k];
  // Sums of 8192 terms of size <= 1 around 0 (their standard deviation is about 30).
  kt::check_close(got, want, 0.0, 1e-3, "weight gradient over 8192 rows");
}

TEST_CASE("weight gradient: a negative size is refused") {
  float x = 0.0f;
  CHECK_THROWS_AS(weight_gradient_in_row_order(&x, &x, &x, -1, 1, 1), std::invalid_argument);
}

TEST_CASE("matmul backward, fp32 and bf16: split rows give the bits of one call") {
  const int M = 600, K = 40, N = 72;
  const auto dout = kt::random_floats(static_cast<std::size_t>(M) * N, 9);
  const auto inp = kt::random_floats(static_cast<std::size_t>(M) * K, 10);
  const auto w = kt::random_floats(static_cast<std::size_t>(N) * K, 11);
  const auto dw0 = kt::random_floats(w.size(), 12), db0 = kt::random_floats(N, 13);
  for (bool bf16 : {false, true}) {
    CAPTURE(bf16);
    auto run = [&](int from, int to, std::vector<float>& dw, std::vector<float>& db) {
      const float* g = dout.data() + static_cast<std::size_t>(from) * N;
      const float* x = inp.data() + static_cast<std::size_t>(from) * K;
      if (bf16)
        matmul_backward_bf16(nullptr, dw.data(), db.data(), g, x, nullptr, w.data(), nullptr,
                             to - from, K, N);
      else
        matmul_backward(nullptr, dw.data(), db.data(), g, x, w.data(), to - from, K, N);
    };
    same_at_any_thread_count([&] {
      std::vector<float> dw = dw0, db = db0, dw2 = dw0, db2 = db0;
      run(0, M, dw, db);
      run(0, 3, dw2, db2);
      run(3, 301, dw2, db2);
      run(301, M, dw2, db2);
      CHECK(same_bits(dw2, dw));
      CHECK(same_bits(db2, db));
      dw.insert(dw.end(), db.begin(), db.end());
      return dw;
    });
  }
}

TEST_CASE("bias + activation backward: split rows give dbias's bits of one call") {
  const int N = 700, C = 150;  // threaded, C not a multiple of the column block
  const auto dout = kt::random_floats(static_cast<std::size_t>(N) * C, 14);
  const auto inp = kt::random_floats(static_cast<std::size_t>(N) * C, 15);
  const auto bias = kt::random_floats(C, 16), db0 = kt::random_floats(C, 17);
  for (bool gelu : {false, true}) {
    CAPTURE(gelu);
    auto run = [&](int from, int to, std::vector<float>& db) {
      const std::size_t off = static_cast<std::size_t>(from) * C;
      if (gelu)
        bias_gelu_backward(nullptr, db.data(), dout.data() + off, inp.data() + off, nullptr,
                           bias.data(), to - from, C);
      else
        bias_relu_backward(nullptr, db.data(), dout.data() + off, inp.data() + off, nullptr,
                           bias.data(), to - from, C);
    };
    same_at_any_thread_count([&] {
      std::vector<float> db = db0, db2 = db0;
      run(0, N, db);
      run(0, 1, db2);
      run(1, 450, db2);
      run(450, N, db2);
      CHECK(same_bits(db2, db));
      return db;
    });
  }
}

TEST_CASE("layernorm backward: split rows give the parameter gradients' bits of one call") {
  const int N = 700, C = 150;
  const auto inp = kt::random_floats(static_cast<std::size_t>(N) * C, 18);
  const auto dout = kt::random_floats(inp.size(), 19);
  const auto w = kt::random_floats(C, 20), b = kt::random_floats(C, 21);
  std::vector<float> out(inp.size()), mean(N), rstd(N);
  layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), w.data(), b.data(), N, C);
  const auto dw0 = kt::random_floats(C, 22), db0 = kt::random_floats(C, 23);
  auto run = [&](int from, int to, std::vector<float>& dw, std::vector<float>& db) {
    const std::size_t off = static_cast<std::size_t>(from) * C;
    layernorm_backward(nullptr, dw.data(), db.data(), dout.data() + off, inp.data() + off, w.data(),
                       mean.data() + from, rstd.data() + from, to - from, C);
  };
  same_at_any_thread_count([&] {
    std::vector<float> dw = dw0, db = db0, dw2 = dw0, db2 = db0;
    run(0, N, dw, db);
    run(0, 64, dw2, db2);
    run(64, 65, dw2, db2);
    run(65, N, dw2, db2);
    CHECK(same_bits(dw2, dw));
    CHECK(same_bits(db2, db));
    dw.insert(dw.end(), db.begin(), db.end());
    return dw;
  });
}
