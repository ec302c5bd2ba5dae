// matmul_forward / matmul_backward: CUDA twin (cuBLASLt) against the CPU (oneDNN).
//
// Tolerances:
// - out, dinp, dweight: 1e-4 relative to the largest magnitude in the same output row
//   (|got - want| <= 1e-4 · (|want| + max |want| of the row)). Both sides are fp32 dot products
//   of the same terms summed in different orders (and blockings); with inputs in [-1, 1] and
//   K up to 512 the rounding difference is a few fp32 ulps of the row's magnitude (around
//   1e-6 relative), far inside 1e-4. The bound is not looser because TF32 math (10-bit
//   mantissa, about 5e-4 relative per product) would reach it on the larger shapes: the
//   CUDA side must stay true fp32 (CUBLAS_COMPUTE_32F).
// - dbias: 1e-5 relative to the largest entry (gt::check_close_scaled): column sums of M
//   values, added in one running sum on the CPU and as per-task partials on the GPU.
// - K = 0 (out = bias) and skipped destinations: exact.
// - Two backward runs: bit-identical.
#include "gpu_check.hpp"

#include "cpu/matmul.hpp"
#include "cuda/matmul.cuh"

#include <stdexcept>

namespace cpu = mb::kernels::cpu;
namespace cuda = mb::kernels::cuda;

namespace {

using Dev = gt::OffsetBuffer;
using gt::nans;

// got and want are rows × cols; see the header for the tolerance.
void check_rows(const std::vector<float>& got, const std::vector<float>& want, int rows,
                int cols, const std::string& what) {
    gt::check_rows_scaled(got, want, rows, cols, 1e-4, what);
}

struct Case {
    int M, K, N;
};

void check_case(const Case& c, bool with_bias, std::size_t off, std::uint32_t seed) {
    const int M = c.M, K = c.K, N = c.N;
    CAPTURE(M);
    CAPTURE(K);
    CAPTURE(N);
    CAPTURE(with_bias);
    CAPTURE(off);
    const std::size_t nMK = static_cast<std::size_t>(M) * K, nNK = static_cast<std::size_t>(N) * K,
                      nMN = static_cast<std::size_t>(M) * N;
    const auto inp = kt::random_floats(nMK, seed);
    const auto weight = kt::random_floats(nNK, seed + 1);
    const auto bias = kt::random_floats(static_cast<std::size_t>(N), seed + 2);
    const float* bias_h = with_bias ? bias.data() : nullptr;

    // Forward: out starts as NaN.
    std::vector<float> want(nMN, 7.0f);
    cpu::matmul_forward(want.data(), inp.data(), weight.data(), bias_h, M, K, N);
    Dev d_inp(inp, off), d_w(weight, off), d_b(bias, off), d_out(nans(nMN), off);
    cuda::matmul_forward(d_out.p(), d_inp.p(), d_w.p(), with_bias ? d_b.p() : nullptr, M, K, N);
    if (K == 0)
        gt::check_equal(d_out.download(), want, "matmul out (K = 0)");
    else
        check_rows(d_out.download(), want, M, N, "matmul out");

    // Backward into random non-zero gradients.
    const auto dout = kt::random_floats(nMN, seed + 3);
    const auto dinp0 = kt::random_floats(nMK, seed + 4);
    const auto dw0 = kt::random_floats(nNK, seed + 5);
    const auto db0 = kt::random_floats(static_cast<std::size_t>(N), seed + 6);
    auto want_dinp = dinp0, want_dw = dw0, want_db = db0;
    cpu::matmul_backward(want_dinp.data(), want_dw.data(), want_db.data(), dout.data(),
                         inp.data(), weight.data(), M, K, N);
    if (M > 0 && N > 0) REQUIRE(gt::differs(want_db, db0));

    Dev d_dout(dout, off);
    Dev d_dinp(dinp0, off), d_dw(dw0, off), d_db(db0, off);
    cuda::matmul_backward(d_dinp.p(), d_dw.p(), d_db.p(), d_dout.p(), d_inp.p(), d_w.p(), M, K, N);
    const auto got_dinp = d_dinp.download(), got_dw = d_dw.download(), got_db = d_db.download();
    check_rows(got_dinp, want_dinp, M, K, "matmul dinp");
    check_rows(got_dw, want_dw, N, K, "matmul dweight");
    gt::check_close_scaled(got_db, want_db, 1e-5, "matmul dbias");

    // Again from the same start: bit-identical.
    Dev r_dinp(dinp0, off), r_dw(dw0, off), r_db(db0, off);
    cuda::matmul_backward(r_dinp.p(), r_dw.p(), r_db.p(), d_dout.p(), d_inp.p(), d_w.p(), M, K, N);
    gt::check_bitwise(r_dinp.download(), got_dinp, "matmul dinp, second run");
    gt::check_bitwise(r_dw.download(), got_dw, "matmul dweight, second run");
    gt::check_bitwise(r_db.download(), got_db, "matmul dbias, second run");

    // One destination at a time, with the operands it does not need passed as null: the same
    // bits as the full call (each gradient is computed independently of the others).
    Dev o_dinp(dinp0, off), o_dw(dw0, off), o_db(db0, off);
    cuda::matmul_backward(o_dinp.p(), nullptr, nullptr, d_dout.p(), nullptr, d_w.p(), M, K, N);
    cuda::matmul_backward(nullptr, o_dw.p(), nullptr, d_dout.p(), d_inp.p(), nullptr, M, K, N);
    cuda::matmul_backward(nullptr, nullptr, o_db.p(), d_dout.p(), nullptr, nullptr, M, K, N);
    cuda::matmul_backward(nullptr, nullptr, nullptr, d_dout.p(), nullptr, nullptr, M, K, N);
    gt::check_bitwise(o_dinp.download(), got_dinp, "matmul dinp alone");
    gt::check_bitwise(o_dw.download(), got_dw, "matmul dweight alone");
    gt::check_bitwise(o_db.download(), got_db, "matmul dbias alone");
}

const Case kCases[] = {
    {1, 1, 1},
    {37, 129, 65},   // odd everywhere
    {64, 256, 128},  // aligned
    {300, 512, 259}, // several dbias tasks; N the byte vocabulary + 3
    {3, 7, 1},       // a single output column
    {1, 64, 33},     // a single row
};

}  // namespace

TEST_CASE("gpu matmul forward and backward match the CPU, with and without bias") {
    std::uint32_t seed = 100;
    for (const Case& c : kCases)
        for (bool with_bias : {true, false}) check_case(c, with_bias, 0, seed += 10);
}

TEST_CASE("gpu matmul: operands aligned to 4 bytes only") {
    std::uint32_t seed = 500;
    for (const Case& c : kCases) check_case(c, true, 1, seed += 10);
}

TEST_CASE("gpu matmul: empty contraction K = 0 gives out = bias and no weight gradients") {
    check_case({5, 0, 3}, true, 0, 900);
    check_case({5, 0, 3}, false, 0, 910);
}

TEST_CASE("gpu matmul: M = 0 or N = 0 writes nothing; negative sizes throw") {
    auto out = gt::to_device(std::vector<float>(4, 7.0f));
    auto x = gt::to_device(std::vector<float>(4, 1.0f));
    cuda::matmul_forward(out.get(), x.get(), x.get(), x.get(), 0, 2, 2);
    cuda::matmul_forward(out.get(), x.get(), x.get(), x.get(), 2, 2, 0);
    cuda::matmul_backward(out.get(), out.get(), out.get(), x.get(), x.get(), x.get(), 0, 2, 2);
    gt::check_equal(out.download(), std::vector<float>(4, 7.0f), "untouched");
    CHECK_THROWS_AS(cuda::matmul_forward(out.get(), x.get(), x.get(), nullptr, -1, 2, 2),
                    std::invalid_argument);
    CHECK_THROWS_AS(cuda::matmul_backward(out.get(), nullptr, nullptr, x.get(), x.get(), x.get(),
                                          2, -2, 2),
                    std::invalid_argument);
}
