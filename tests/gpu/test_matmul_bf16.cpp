// The bf16 matmul pair (matmul_forward_bf16 / matmul_backward_bf16) and the conversions, where
// the kernels take more than the Backend passes them; their parity with the CPU through the
// Backend (operands as values, bf16 patterns or both) is in the op table (test_backend_ops.cpp).
// - to_bf16: bit-identical to cpu::bf16_bits for every non-NaN input; a NaN gives a NaN (the
//   hardware's cvt.rn.bf16.f32 need not produce the same NaN pattern as the CPU's 0x7FFF);
//   padded rows (the kernel's ld).
// - The products: M = 0 or N = 0 and refusals; bf16 copies of the operands that differ from
//   their values, to tell which one the kernel read (the Backend never passes such operands).
//   Tolerance: |got - want| <= 1e-5 · (|want| + max |want| of the same output row), as the op
//   table's bf16 rows say: both sides add exactly the same products of bf16 values in fp32,
//   in different orders.
#include "matmul_parity.hpp"

#include "cpu/bf16.hpp"
#include "cpu/matmul.hpp"
#include "cuda/bf16.cuh"
#include "cuda/matmul.cuh"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace cpu = mb::kernels::cpu;
namespace cuda = mb::kernels::cuda;

namespace {

constexpr double kRel = 1e-5;

void check_rows(const std::vector<float>& got, const std::vector<float>& want, int rows, int cols,
                const std::string& what) {
  gt::check_rows_scaled(got, want, rows, cols, kRel, what);
}

// The CUDA pair without operand copies.
void gpu_forward(float* out, const float* inp, const float* w, const float* b, int M, int K,
                 int N) {
  cuda::matmul_forward_bf16(out, inp, nullptr, w, nullptr, b, M, K, N);
}
void gpu_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp,
                  const float* w, int M, int K, int N, bool accumulate_dinp) {
  cuda::matmul_backward_bf16(dinp, dw, db, dout, inp, nullptr, w, nullptr, M, K, N,
                             accumulate_dinp);
}

const gt::MatmulPair kBf16{"matmul bf16", gpu_forward, gpu_backward};

bool is_bf16_nan(std::uint16_t b) { return (b & 0x7F80u) == 0x7F80u && (b & 0x007Fu) != 0; }

// to_bf16 on src (rows × cols, padded to ld) against cpu::bf16_bits, element by element.
// Returns the number of NaN inputs.
std::size_t check_conversion(const std::vector<float>& src, std::size_t rows, std::size_t cols,
                             std::size_t ld, const std::string& what) {
  REQUIRE(src.size() == rows * cols);
  const auto d_src = gt::to_device(src);
  gt::DeviceBuffer<std::uint16_t> d_dst(std::vector<std::uint16_t>(rows * ld, 0xABCDu));
  cuda::to_bf16(d_dst.get(), d_src.get(), rows, cols, ld);
  const auto got = d_dst.download();
  std::size_t bad = 0, first = 0, nan_count = 0;
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < ld; ++c) {
      const std::uint16_t g = got[r * ld + c];
      bool ok;
      if (c >= cols) {
        ok = g == 0;  // padding
      } else {
        const float x = src[r * cols + c];
        if (std::isnan(x)) {
          ok = is_bf16_nan(g);
          ++nan_count;
        } else {
          ok = g == cpu::bf16_bits(x);
        }
      }
      if (!ok && bad++ == 0) first = r * ld + c;
    }
  CHECK_MESSAGE(bad == 0, what << ": " << bad << " of " << got.size() << " differ; first at "
                               << first << ": got " << got[first]);
  return nan_count;
}

std::vector<float> special_values() {
  const std::uint32_t bits[] = {
      0x00000000u, 0x80000000u,                            // ±0
      0x3F800000u, 0xC0200000u,                            // exact bf16 values
      0x3F808000u, 0x3F818000u, 0xBF808000u, 0xBF818000u,  // ties both ways
      0x3F808001u, 0x3F807FFFu, 0x3FFF8000u, 0x7F7F0000u, 0x7F7F7FFFu, 0x7F7F8000u,
      0x7F7FFFFFu, 0xFF7FFFFFu,  // near the top
      0x7F800000u, 0xFF800000u,  // ±inf
      0x00010000u, 0x00018000u, 0x00008000u, 0x00008001u, 0x007FFFFFu, 0x80000001u,
      0x807FFFFFu, 0x00800000u,  // denormals, smallest normal
      0x7FC00000u, 0x7F800001u, 0xFF800001u, 0x7FBFFFFFu, 0xFFFFFFFFu, 0x7F80FFFFu,  // NaNs
  };
  std::vector<float> v;
  for (std::uint32_t b : bits) v.push_back(std::bit_cast<float>(b));
  return v;
}

}  // namespace

TEST_CASE("gpu to_bf16: bit-exact against cpu::bf16_bits on special values, NaNs included") {
  const auto special = special_values();
  CHECK(check_conversion(special, 1, special.size(), special.size(), "to_bf16 special values") ==
        6);
}

TEST_CASE("gpu to_bf16: padded rows, and more rows than gridDim.y allows") {
  const auto a = kt::random_floats(37 * 13, 90);
  check_conversion(a, 37, 13, 16, "to_bf16 37 x 13 padded to 16");
  const auto b = kt::random_floats(70000 * 3, 91);
  check_conversion(b, 70000, 3, cuda::bf16_ld(3), "to_bf16 70000 x 3 padded to 8");
  const auto c = kt::random_floats(5 * 8, 92);
  check_conversion(c, 5, 8, 8, "to_bf16 5 x 8 unpadded");
  auto d_src = gt::to_device(a);
  gt::DeviceBuffer<std::uint16_t> d_dst(std::size_t{37 * 16});
  CHECK_THROWS_AS(cuda::to_bf16(d_dst.get(), d_src.get(), 37, 13, 12), std::invalid_argument);
}

TEST_CASE("gpu matmul bf16: M = 0 or N = 0 writes nothing; negative sizes throw") {
  gt::check_matmul_empty_and_negative(kBf16);
}

TEST_CASE("gpu matmul bf16: an operand given neither as values nor as a copy is refused") {
  auto out = gt::to_device(std::vector<float>(6, 7.0f));
  auto x = gt::to_device(std::vector<float>(6, 1.0f));
  CHECK_THROWS_AS(
      cuda::matmul_forward_bf16(out.get(), nullptr, nullptr, x.get(), nullptr, nullptr, 2, 1, 3),
      std::invalid_argument);
  CHECK_THROWS_AS(
      cuda::matmul_forward_bf16(out.get(), x.get(), nullptr, nullptr, nullptr, nullptr, 2, 1, 3),
      std::invalid_argument);
  CHECK_THROWS_AS(cuda::matmul_backward_bf16(out.get(), nullptr, nullptr, x.get(), x.get(), nullptr,
                                             nullptr, nullptr, 2, 1, 3),
                  std::invalid_argument);
  CHECK_THROWS_AS(cuda::matmul_backward_bf16(nullptr, out.get(), nullptr, x.get(), nullptr, nullptr,
                                             x.get(), nullptr, 2, 1, 3),
                  std::invalid_argument);
  gt::check_equal(out.download(), std::vector<float>(6, 7.0f), "untouched");
}

// bf16 copies of the operands: a weight's (what AdamW writes) and an input's (an activation
// the model saved in bf16 only). To tell which operand the GPU read, the weight's copy is of 2w
// while the fp32 weight is w: where the copy can be taken as it is (K a multiple of 8, the copy
// 16-byte aligned), the products are those of 2w; otherwise the GPU stages w itself, as
// without a copy. The input is given as its copy alone (fp32 pointer null), read in place or
// padded (pad_bf16) by the same rule. Either way against the CPU twin on the same operands,
// with the tolerances of the table above.
TEST_CASE("gpu matmul bf16: operands' bf16 copies are read in place where their rows are aligned") {
  struct CopyCase {
    int M, K, N;
    std::size_t copy_off;  // elements into their buffers: 1 = 2-byte aligned, not usable
    bool read_in_place;
  };
  const CopyCase cases[] = {
      {33, 64, 48, 0, true}, {7, 40, 130, 0, true}, {33, 37, 48, 0, false}, {33, 64, 48, 1, false}};
  std::uint32_t seed = 1200;
  for (const CopyCase& c : cases) {
    const int M = c.M, K = c.K, N = c.N;
    CAPTURE(M);
    CAPTURE(K);
    CAPTURE(N);
    CAPTURE(c.copy_off);
    const std::size_t nMK = static_cast<std::size_t>(M) * K, nNK = static_cast<std::size_t>(N) * K;
    const auto inp = kt::random_floats(nMK, seed += 10);
    const auto w = kt::random_floats(nNK, seed + 1);
    const auto dout = kt::random_floats(static_cast<std::size_t>(M) * N, seed + 2);
    std::vector<float> w2(nNK);
    for (std::size_t i = 0; i < nNK; ++i) w2[i] = 2.0f * w[i];
    auto copy_of = [&](const std::vector<float>& v) {
      std::vector<std::uint16_t> bits(v.size() + c.copy_off, 0);
      for (std::size_t i = 0; i < v.size(); ++i) bits[c.copy_off + i] = cpu::bf16_bits(v[i]);
      return gt::to_device(bits);
    };
    const auto& read = c.read_in_place ? w2 : w;  // what the GPU must have multiplied by

    std::vector<float> want(static_cast<std::size_t>(M) * N), want_dinp(nMK, 0.0f);
    std::vector<float> want_dw(nNK, 0.0f);
    cpu::matmul_forward_bf16(want.data(), inp.data(), nullptr, read.data(), nullptr, nullptr, M, K,
                             N);
    cpu::matmul_backward_bf16(want_dinp.data(), want_dw.data(), nullptr, dout.data(), inp.data(),
                              nullptr, read.data(), nullptr, M, K, N);

    auto d_w = gt::to_device(w), d_dout = gt::to_device(dout);
    auto d_wcopy = copy_of(w2), d_icopy = copy_of(inp);
    const std::uint16_t* wcopy = d_wcopy.get() + c.copy_off;
    const std::uint16_t* icopy = d_icopy.get() + c.copy_off;
    auto d_out = gt::nan_buffer(want.size());
    auto d_dinp = gt::to_device(std::vector<float>(nMK, 0.0f));
    auto d_dw = gt::to_device(std::vector<float>(nNK, 0.0f));
    cuda::matmul_forward_bf16(d_out.get(), nullptr, icopy, d_w.get(), wcopy, nullptr, M, K, N);
    cuda::matmul_backward_bf16(d_dinp.get(), d_dw.get(), nullptr, d_dout.get(), nullptr, icopy,
                               d_w.get(), wcopy, M, K, N);
    check_rows(d_out.download(), want, M, N, "forward from copies");
    check_rows(d_dinp.download(), want_dinp, M, K, "dinp from a weight copy");
    check_rows(d_dw.download(), want_dw, N, K, "dweight from an input copy");
  }
}

TEST_CASE("gpu pad_bf16: rows copied bit for bit, padding zeroed, bad ld refused") {
  std::mt19937 gen(93);
  const std::size_t rows = 37, cols = 13, ld = 16;
  std::vector<std::uint16_t> src(rows * cols);
  for (auto& b : src) b = static_cast<std::uint16_t>(gen());
  auto d_src = gt::to_device(src);
  gt::DeviceBuffer<std::uint16_t> d_dst(std::vector<std::uint16_t>(rows * ld, 0xABCD));
  cuda::pad_bf16(d_dst.get(), d_src.get(), rows, cols, ld);
  std::vector<std::uint16_t> want(rows * ld, 0);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) want[r * ld + c] = src[r * cols + c];
  gt::check_equal(d_dst.download(), want, "pad_bf16 37 x 13 padded to 16");
  CHECK_THROWS_AS(cuda::pad_bf16(d_dst.get(), d_src.get(), rows, cols, cols - 1),
                  std::invalid_argument);
}
