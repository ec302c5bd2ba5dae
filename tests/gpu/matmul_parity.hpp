// One parity check for both matmul pairs, the fp32 one (test_matmul.cpp) and the bf16 one
// (test_matmul_bf16.cpp): the CUDA twin against its CPU twin on random operands, forward and
// backward, with and without bias, at any alignment, twice (bit-identical), and with one
// gradient destination at a time. Each test file states its pair's tolerance and why.
#pragma once

#include "gpu_check.hpp"

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace gt {

// A matmul pair with the fp32 signature; the bf16 pair is wrapped to it (no operand copies).
struct MatmulPair {
    using Forward = void (*)(float* out, const float* inp, const float* weight,
                             const float* bias, int M, int K, int N);
    using Backward = void (*)(float* dinp, float* dweight, float* dbias, const float* dout,
                              const float* inp, const float* weight, int M, int K, int N);
    std::string name;  // "matmul" or "matmul bf16", the prefix of every message
    double rel;        // out, dinp, dweight: |got - want| <= rel · (|want| + max |want| of the row)
    Forward cpu_forward, gpu_forward;
    Backward cpu_backward, gpu_backward;
    // Set for a pair that rounds its operands: the CPU's fp32 product must then fail the same
    // tolerance, or the shapes could not tell a rounded operand from an unrounded one.
    Forward unrounded_forward = nullptr;
    Backward unrounded_backward = nullptr;
};

struct MatmulCase {
    int M, K, N;
};

namespace matmul_parity_detail {

inline void check_rows(const MatmulPair& pair, const std::vector<float>& got,
                       const std::vector<float>& want, int rows, int cols,
                       const std::string& what) {
    check_rows_scaled(got, want, rows, cols, pair.rel, pair.name + " " + what);
}

// The unrounded result must fail the tolerance (skipped for tiny outputs).
inline void check_sensitive(const MatmulPair& pair, const std::vector<float>& unrounded,
                            const std::vector<float>& want, int rows, int cols,
                            const std::string& what) {
    if (static_cast<std::size_t>(rows) * cols < 16) return;
    CHECK_MESSAGE(count_row_scaled_bad(unrounded, want, rows, cols, pair.rel) > 0,
                  pair.name << " " << what
                            << ": the test cannot tell rounded operands from fp32 ones");
}

}  // namespace matmul_parity_detail

// off: offset (in floats) of every operand; bias_off: of the bias alone, so that a bias that is
// not 16-byte aligned (which cuBLASLt's epilogue cannot take) is tested beside aligned data.
// dbias is checked to 1e-5 of its largest entry: fp32 column sums of dout on both sides, in one
// running sum on the CPU and as per-task partials on the GPU. K = 0 (out = bias): exact.
inline void check_matmul_case(const MatmulPair& pair, const MatmulCase& c, bool with_bias,
                              std::size_t off, std::size_t bias_off, std::uint32_t seed) {
    using Dev = OffsetBuffer;
    using matmul_parity_detail::check_rows;
    using matmul_parity_detail::check_sensitive;
    const int M = c.M, K = c.K, N = c.N;
    CAPTURE(M);
    CAPTURE(K);
    CAPTURE(N);
    CAPTURE(with_bias);
    CAPTURE(off);
    CAPTURE(bias_off);
    const std::size_t nMK = static_cast<std::size_t>(M) * K, nNK = static_cast<std::size_t>(N) * K,
                      nMN = static_cast<std::size_t>(M) * N;
    const auto inp = kt::random_floats(nMK, seed);
    const auto weight = kt::random_floats(nNK, seed + 1);
    const auto bias = kt::random_floats(static_cast<std::size_t>(N), seed + 2);
    const float* bias_h = with_bias ? bias.data() : nullptr;

    // Forward: out starts as NaN on the device, 7 on the host.
    std::vector<float> want(nMN, 7.0f);
    pair.cpu_forward(want.data(), inp.data(), weight.data(), bias_h, M, K, N);
    Dev d_inp(inp, off), d_w(weight, off), d_b(bias, bias_off), d_out(nans(nMN), off);
    const float* d_bias = with_bias ? d_b.p() : nullptr;
    pair.gpu_forward(d_out.p(), d_inp.p(), d_w.p(), d_bias, M, K, N);
    const auto got = d_out.download();
    if (K == 0) {
        check_equal(got, want, pair.name + " out (K = 0)");
    } else {
        check_rows(pair, got, want, M, N, "out");
        if (pair.unrounded_forward) {
            std::vector<float> unrounded(nMN);
            pair.unrounded_forward(unrounded.data(), inp.data(), weight.data(), bias_h, M, K, N);
            check_sensitive(pair, unrounded, want, M, N, "out");
        }
    }
    Dev r_out(nans(nMN), off);
    pair.gpu_forward(r_out.p(), d_inp.p(), d_w.p(), d_bias, M, K, N);
    check_bitwise(r_out.download(), got, pair.name + " out, second run");

    // Backward into random non-zero gradients.
    const auto dout = kt::random_floats(nMN, seed + 3);
    const auto dinp0 = kt::random_floats(nMK, seed + 4);
    const auto dw0 = kt::random_floats(nNK, seed + 5);
    const auto db0 = kt::random_floats(static_cast<std::size_t>(N), seed + 6);
    auto want_dinp = dinp0, want_dw = dw0, want_db = db0;
    pair.cpu_backward(want_dinp.data(), want_dw.data(), want_db.data(), dout.data(), inp.data(),
                      weight.data(), M, K, N);
    if (M > 0 && N > 0) REQUIRE(differs(want_db, db0));

    Dev d_dout(dout, off);
    Dev d_dinp(dinp0, off), d_dw(dw0, off), d_db(db0, off);
    pair.gpu_backward(d_dinp.p(), d_dw.p(), d_db.p(), d_dout.p(), d_inp.p(), d_w.p(), M, K, N);
    const auto got_dinp = d_dinp.download(), got_dw = d_dw.download(), got_db = d_db.download();
    check_rows(pair, got_dinp, want_dinp, M, K, "dinp");
    check_rows(pair, got_dw, want_dw, N, K, "dweight");
    check_close_scaled(got_db, want_db, 1e-5, pair.name + " dbias");
    if (K > 0 && pair.unrounded_backward) {
        auto unrounded_dinp = dinp0, unrounded_dw = dw0;
        pair.unrounded_backward(unrounded_dinp.data(), unrounded_dw.data(), nullptr, dout.data(),
                                inp.data(), weight.data(), M, K, N);
        check_sensitive(pair, unrounded_dinp, want_dinp, M, K, "dinp");
        check_sensitive(pair, unrounded_dw, want_dw, N, K, "dweight");
    }

    // Again from the same start: bit-identical.
    Dev r_dinp(dinp0, off), r_dw(dw0, off), r_db(db0, off);
    pair.gpu_backward(r_dinp.p(), r_dw.p(), r_db.p(), d_dout.p(), d_inp.p(), d_w.p(), M, K, N);
    check_bitwise(r_dinp.download(), got_dinp, pair.name + " dinp, second run");
    check_bitwise(r_dw.download(), got_dw, pair.name + " dweight, second run");
    check_bitwise(r_db.download(), got_db, pair.name + " dbias, second run");

    // One destination at a time, with the operands it does not need passed as null: the same
    // bits as the full call (each gradient is computed independently of the others).
    Dev o_dinp(dinp0, off), o_dw(dw0, off), o_db(db0, off);
    pair.gpu_backward(o_dinp.p(), nullptr, nullptr, d_dout.p(), nullptr, d_w.p(), M, K, N);
    pair.gpu_backward(nullptr, o_dw.p(), nullptr, d_dout.p(), d_inp.p(), nullptr, M, K, N);
    pair.gpu_backward(nullptr, nullptr, o_db.p(), d_dout.p(), nullptr, nullptr, M, K, N);
    pair.gpu_backward(nullptr, nullptr, nullptr, d_dout.p(), nullptr, nullptr, M, K, N);
    check_bitwise(o_dinp.download(), got_dinp, pair.name + " dinp alone");
    check_bitwise(o_dw.download(), got_dw, pair.name + " dweight alone");
    check_bitwise(o_db.download(), got_db, pair.name + " dbias alone");
}

// M = 0 or N = 0 writes nothing; negative sizes throw std::invalid_argument.
inline void check_matmul_empty_and_negative(const MatmulPair& pair) {
    auto out = to_device(std::vector<float>(4, 7.0f));
    auto x = to_device(std::vector<float>(4, 1.0f));
    pair.gpu_forward(out.get(), x.get(), x.get(), x.get(), 0, 2, 2);
    pair.gpu_forward(out.get(), x.get(), x.get(), x.get(), 2, 2, 0);
    pair.gpu_backward(out.get(), out.get(), out.get(), x.get(), x.get(), x.get(), 0, 2, 2);
    check_equal(out.download(), std::vector<float>(4, 7.0f), pair.name + " untouched");
    CHECK_THROWS_AS(pair.gpu_forward(out.get(), x.get(), x.get(), nullptr, -1, 2, 2),
                    std::invalid_argument);
    CHECK_THROWS_AS(pair.gpu_backward(out.get(), nullptr, nullptr, x.get(), x.get(), x.get(), 2,
                                      -2, 2),
                    std::invalid_argument);
}

}  // namespace gt
