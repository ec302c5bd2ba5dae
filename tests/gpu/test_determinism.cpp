// Every CUDA backward (and every reduction that returns a value) run twice from the same
// inputs gives bit-identical results: the exact-resume guarantee of training rests on it.
//
// The shapes spread each op over many blocks and row tasks, and the ids and targets repeat
// heavily, so an implementation that summed with floating-point atomics (whose order follows
// the scheduling) would very likely differ between the two runs. Each case also checks that
// the op changed its destination, so two untouched buffers cannot pass as "identical".
#include "gpu_check.hpp"

#include "cuda/ops.hpp"

#include <random>

namespace cuda = mb::kernels::cuda;

namespace {

// Runs `op` on fresh copies of the initial destinations, twice, and compares the results
// bitwise. op takes the device destination pointers.
template <class Op>
void twice(const std::vector<std::vector<float>>& initial, Op&& op, const std::string& what) {
  std::vector<std::vector<float>> first;
  for (int run = 0; run < 2; ++run) {
    std::vector<gt::DeviceBuffer<float>> dst;
    for (const auto& v : initial) dst.emplace_back(v);
    op(dst);
    for (std::size_t i = 0; i < dst.size(); ++i) {
      auto got = dst[i].download();
      if (run == 0) {
        CHECK_MESSAGE(gt::differs(got, initial[i]),
                      what << ": destination " << i << " was not written");
        first.push_back(std::move(got));
      } else {
        gt::check_bitwise(got, first[i], what + ": destination " + std::to_string(i));
      }
    }
  }
}

std::vector<std::int32_t> skewed_ids(int N, int V, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> dist(0, V - 1);
  std::vector<std::int32_t> ids(N);
  for (int n = 0; n < N; ++n) ids[n] = n % 2 == 0 ? 32 : dist(gen);  // half the rows share id 32
  return ids;
}

}  // namespace

TEST_CASE("gpu determinism: residual and dropout backward") {
  const std::size_t n = 1000003;
  auto g = gt::to_device(kt::random_floats(n, 1));
  twice(
      {kt::random_floats(n, 2), kt::random_floats(n, 3)},
      [&](auto& d) { cuda::residual_backward(d[0].get(), d[1].get(), g.get(), n); },
      "residual_backward");
  twice(
      {kt::random_floats(n, 4)},
      [&](auto& d) { cuda::dropout_backward(d[0].get(), g.get(), n, 0.3f, 5, 77); },
      "dropout_backward");
}

TEST_CASE("gpu determinism: bias + activation backward") {
  const int N = 8195, C = 771;  // 256 row tasks of 33 rows; 25 column tiles
  const std::size_t n = static_cast<std::size_t>(N) * C;
  auto x = gt::to_device(kt::random_floats(n, 1, -3.0f, 3.0f));
  auto b = gt::to_device(kt::random_floats(C, 2));
  auto g = gt::to_device(kt::random_floats(n, 3));
  const std::vector<std::vector<float>> init{kt::random_floats(n, 4), kt::random_floats(C, 5)};
  twice(
      init,
      [&](auto& d) {
        cuda::bias_gelu_backward(d[0].get(), d[1].get(), g.get(), x.get(), nullptr, b.get(), N, C);
      },
      "bias_gelu_backward");
  twice(
      init,
      [&](auto& d) {
        cuda::bias_relu_backward(d[0].get(), d[1].get(), g.get(), x.get(), nullptr, b.get(), N, C);
      },
      "bias_relu_backward");
}

TEST_CASE("gpu determinism: layernorm backward") {
  const int N = 8195, C = 771;
  const std::size_t n = static_cast<std::size_t>(N) * C;
  auto x = gt::to_device(kt::random_floats(n, 1, 2.0f, 4.0f));
  auto w = gt::to_device(kt::random_floats(C, 2, 0.5f, 1.5f));
  auto b = gt::to_device(kt::random_floats(C, 3));
  auto g = gt::to_device(kt::random_floats(n, 4));
  auto y = gt::nan_buffer(n), mean = gt::nan_buffer(N), rstd = gt::nan_buffer(N);
  cuda::layernorm_forward(y.get(), mean.get(), rstd.get(), x.get(), w.get(), b.get(), N, C);
  twice(
      {kt::random_floats(n, 5), kt::random_floats(C, 6), kt::random_floats(C, 7)},
      [&](auto& d) {
        cuda::layernorm_backward(d[0].get(), d[1].get(), d[2].get(), g.get(), x.get(), w.get(),
                                 mean.get(), rstd.get(), N, C);
      },
      "layernorm_backward");
}

TEST_CASE("gpu determinism: embedding backward with a heavily shared id") {
  const int N = 16385, C = 300, V = 259;
  auto ids = gt::to_device(skewed_ids(N, V, 1));
  auto g = gt::to_device(kt::random_floats(static_cast<std::size_t>(N) * C, 2));
  twice(
      {kt::random_floats(static_cast<std::size_t>(V) * C, 3)},
      [&](auto& d) { cuda::embedding_backward(d[0].get(), g.get(), ids.get(), N, C, V); },
      "embedding_backward");
}

TEST_CASE("gpu determinism: crossentropy backward and loss sums") {
  const int N = 20011, D = 64, V = 259;  // two chunks of rows
  auto h = gt::to_device(kt::random_floats(static_cast<std::size_t>(N) * D, 1));
  auto E = gt::to_device(kt::random_floats(static_cast<std::size_t>(V) * D, 2));
  auto t = skewed_ids(N, V, 3);
  for (int n = 0; n < N; n += 7) t[n] = -1;
  auto targets = gt::to_device(t);
  double sums[2] = {0.0, 0.0};
  int run = 0;
  twice(
      {kt::random_floats(static_cast<std::size_t>(N) * D, 4),
       kt::random_floats(static_cast<std::size_t>(V) * D, 5)},
      [&](auto& d) {
        sums[run++] = cuda::crossentropy_backward(d[0].get(), d[1].get(), h.get(), E.get(),
                                                  targets.get(), 1e-3f, N, D, V)
                          .loss;
      },
      "crossentropy_backward");
  CHECK(sums[0] > 0.0);
  gt::check_bitwise(std::vector<double>{sums[0]}, std::vector<double>{sums[1]},
                    "crossentropy loss sum");
}

TEST_CASE("gpu determinism: gradient norm") {
  const std::size_t n = 3000017;
  auto g = gt::to_device(kt::random_floats(n, 1));
  const double a = cuda::grad_norm_squared(g.get(), n);
  const double b = cuda::grad_norm_squared(g.get(), n);
  CHECK(a > 0.0);
  gt::check_bitwise(std::vector<double>{a}, std::vector<double>{b}, "grad_norm_squared");
}

TEST_CASE("gpu determinism: matmul and attention backward") {
  // matmul: cuBLASLt with one algorithm on one stream, and the two-pass dbias.
  const int M = 777, K = 256, N = 320;
  auto inp = gt::to_device(kt::random_floats(static_cast<std::size_t>(M) * K, 31));
  auto w = gt::to_device(kt::random_floats(static_cast<std::size_t>(N) * K, 32));
  auto dout = gt::to_device(kt::random_floats(static_cast<std::size_t>(M) * N, 33));
  twice(
      {kt::random_floats(static_cast<std::size_t>(M) * K, 34),
       kt::random_floats(static_cast<std::size_t>(N) * K, 35), kt::random_floats(N, 36)},
      [&](auto& d) {
        cuda::matmul_backward(d[0].get(), d[1].get(), d[2].get(), dout.get(), inp.get(), w.get(), M,
                              K, N);
      },
      "matmul_backward");

  // attention: every key tile sums its queries, every query tile its keys, in a fixed order.
  const int B = 2, T = 300, H = 3, d = 64;
  const std::size_t rows = static_cast<std::size_t>(B) * T;
  auto qkv = gt::to_device(kt::random_floats(rows * 3 * H * d, 41));
  gt::DeviceBuffer<float> out(kt::random_floats(rows * H * d, 42));
  gt::DeviceBuffer<float> lse(kt::random_floats(static_cast<std::size_t>(B) * H * T, 43));
  cuda::attention_forward(out.get(), lse.get(), qkv.get(), B, T, H, d);
  auto g = gt::to_device(kt::random_floats(rows * H * d, 44));
  twice(
      {kt::random_floats(rows * 3 * H * d, 45)},
      [&](auto& dst) {
        cuda::attention_backward(dst[0].get(), g.get(), out.get(), lse.get(), qkv.get(), B, T, H,
                                 d);
      },
      "attention_backward");
}
