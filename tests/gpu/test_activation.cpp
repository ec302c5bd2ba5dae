// bias_gelu_* / bias_relu_*: CUDA twins against the CPU.
//
// Tolerances:
// - ReLU forward, and ReLU dinp: exact. v = inp + bias is one fp32 addition on both sides,
//   max(v, 0) and dout · [v > 0] are exact, and dinp += g is one more addition.
// - GELU forward: 1e-5 relative + 2e-6 absolute. The GPU uses tanhf (about 1e-7 absolute
//   error near |t| = 1); the CPU uses tanh_approx (below 2.5e-7, tests/kernels/test_simd.cpp),
//   and 0.5 · v · (1 + t) carries their difference times |v| / 2 <= 2 for |v| = |inp + bias|
//   <= 4 here: at most ~7.4e-7, which matters where gelu(v) itself is tiny (v near -4).
// - GELU dinp: 1e-5 relative + 1e-5 absolute: gelu' contains 0.5 · v · sqrt(2/pi) ·
//   (1 + 3 · 0.044715 · v²) · (1 - t²), which scales the difference in t by up to ~10, so
//   at most ~4e-6.
// - dbias (both): column sums of N values in different orders (fp32) -> 1e-4 relative to the
//   largest column sum (gt::check_close_scaled); for GELU plus N · 4e-6, the summed worst-case
//   difference between the two twins' gelu' (above).
// - Backward from the pre-activation's bf16 copy: the same tolerances against the CPU reading
//   the same copy; and bit-identical to the GPU's own backward at the rounded fp32 values
//   (widening bf16 is exact, the arithmetic after it is the same).
#include "gpu_check.hpp"

#include "cpu/activation.hpp"
#include "cpu/bf16.hpp"
#include "cuda/activation.cuh"

namespace cpu = mb::kernels::cpu;
namespace cuda = mb::kernels::cuda;

namespace {

enum class Act { gelu, relu };

struct Shape {
    int N, C;
};

// Not multiples of the 32-column tiles or of the 16-row tasks; one with N > 256 · 16 rows, so
// tasks hold more than the minimum of rows; N = 1 and C = 1 edge cases.
const Shape kShapes[] = {{1, 1}, {1, 257}, {7, 33}, {300, 65}, {4133, 40}};

void fwd(Act a, bool gpu, float* out, const float* inp, const float* bias, int N, int C) {
    if (a == Act::gelu)
        gpu ? cuda::bias_gelu_forward(out, inp, bias, N, C) : cpu::bias_gelu_forward(out, inp, bias, N, C);
    else
        gpu ? cuda::bias_relu_forward(out, inp, bias, N, C) : cpu::bias_relu_forward(out, inp, bias, N, C);
}

// inp_bf16: the pre-activation's bf16 copy, read instead of inp when given.
void bwd(Act a, bool gpu, float* dinp, float* dbias, const float* dout, const float* inp,
         const float* bias, int N, int C, const std::uint16_t* inp_bf16 = nullptr) {
    if (a == Act::gelu)
        gpu ? cuda::bias_gelu_backward(dinp, dbias, dout, inp, inp_bf16, bias, N, C)
            : cpu::bias_gelu_backward(dinp, dbias, dout, inp, inp_bf16, bias, N, C);
    else
        gpu ? cuda::bias_relu_backward(dinp, dbias, dout, inp, inp_bf16, bias, N, C)
            : cpu::bias_relu_backward(dinp, dbias, dout, inp, inp_bf16, bias, N, C);
}

void check_out(Act a, const std::vector<float>& got, const std::vector<float>& want,
               const std::string& what) {
    if (a == Act::relu)
        gt::check_equal(got, want, what);
    else
        kt::check_close(got, want, 1e-5, 2e-6, what);
}

void check_dinp(Act a, const std::vector<float>& got, const std::vector<float>& want,
                const std::string& what) {
    if (a == Act::relu)
        gt::check_equal(got, want, what);
    else
        kt::check_close(got, want, 1e-5, 1e-5, what);
}

void check_dbias(Act a, const std::vector<float>& got, const std::vector<float>& want, int N,
                 const std::string& what) {
    gt::check_close_scaled(got, want, 1e-4, what, a == Act::gelu ? N * 4e-6 : 0.0);
}

void check_forward(Act a, Shape s, bool with_bias) {
    const int N = s.N, C = s.C;
    const std::size_t n = static_cast<std::size_t>(N) * C;
    const auto x = kt::random_floats(n, 1, -3.0f, 3.0f);
    const auto b = kt::random_floats(C, 2);
    const float* hb = with_bias ? b.data() : nullptr;
    std::vector<float> want(n);
    fwd(a, false, want.data(), x.data(), hb, N, C);

    auto dx = gt::to_device(x), db = gt::to_device(b);
    const float* gb = with_bias ? db.get() : nullptr;
    auto out = gt::nan_buffer(n);
    fwd(a, true, out.get(), dx.get(), gb, N, C);
    check_out(a, out.download(), want, "activation out");
    fwd(a, true, dx.get(), dx.get(), gb, N, C);  // in place
    check_out(a, dx.download(), want, "activation out, in place");
}

// from_copy: both twins read the pre-activation as its bf16 copy (inp null); the GPU's result
// is then also checked bit for bit against its own backward at the rounded fp32 values.
void check_backward(Act a, Shape s, bool with_bias, bool from_copy = false) {
    const int N = s.N, C = s.C;
    const std::size_t n = static_cast<std::size_t>(N) * C;
    const auto x = kt::random_floats(n, 3, -3.0f, 3.0f);
    const auto b = kt::random_floats(C, 4);
    const auto g = kt::random_floats(n, 5);
    const auto dinp0 = kt::random_floats(n, 6);
    const auto dbias0 = kt::random_floats(C, 7);
    std::vector<std::uint16_t> copy(from_copy ? n : 0);
    std::vector<float> rounded(copy.size());
    for (std::size_t i = 0; i < copy.size(); ++i) {
        copy[i] = cpu::bf16_bits(x[i]);
        rounded[i] = cpu::round_to_bf16(x[i]);
    }
    const float* hx = from_copy ? nullptr : x.data();
    const std::uint16_t* hcopy = from_copy ? copy.data() : nullptr;
    const float* hb = with_bias ? b.data() : nullptr;
    auto want_dinp = dinp0, want_dbias = dbias0;
    bwd(a, false, want_dinp.data(), want_dbias.data(), g.data(), hx, hb, N, C, hcopy);
    if (n >= 32) {  // a single ReLU input may be negative, and then nothing changes
        REQUIRE(gt::differs(want_dinp, dinp0));
        REQUIRE(gt::differs(want_dbias, dbias0));
    }

    auto dx = gt::to_device(from_copy ? rounded : x), db = gt::to_device(b), dg = gt::to_device(g);
    auto d_copy = gt::to_device(copy);
    const float* gx = from_copy ? nullptr : dx.get();
    const std::uint16_t* gcopy = from_copy ? d_copy.get() : nullptr;
    const float* gb = with_bias ? db.get() : nullptr;
    auto dinp = gt::to_device(dinp0), dbias = gt::to_device(dbias0);
    bwd(a, true, dinp.get(), dbias.get(), dg.get(), gx, gb, N, C, gcopy);
    const auto got_dinp = dinp.download(), got_dbias = dbias.download();
    check_dinp(a, got_dinp, want_dinp, "activation dinp");
    check_dbias(a, got_dbias, want_dbias, N, "activation dbias");

    // Each destination alone: the other path must give the same values, and skip its target.
    auto dinp_only = gt::to_device(dinp0), dbias_only = gt::to_device(dbias0);
    bwd(a, true, dinp_only.get(), nullptr, dg.get(), gx, gb, N, C, gcopy);
    bwd(a, true, nullptr, dbias_only.get(), dg.get(), gx, gb, N, C, gcopy);
    check_dinp(a, dinp_only.download(), want_dinp, "activation dinp without dbias");
    check_dbias(a, dbias_only.download(), want_dbias, N, "activation dbias without dinp");

    if (from_copy) {  // dx holds the rounded values: the same arithmetic after an exact widening
        auto r_dinp = gt::to_device(dinp0), r_dbias = gt::to_device(dbias0);
        bwd(a, true, r_dinp.get(), r_dbias.get(), dg.get(), dx.get(), gb, N, C);
        gt::check_bitwise(got_dinp, r_dinp.download(), "dinp: copy vs rounded fp32");
        gt::check_bitwise(got_dbias, r_dbias.download(), "dbias: copy vs rounded fp32");
    }
}

}  // namespace

TEST_CASE("gpu bias + gelu forward against the CPU") {
    for (Shape s : kShapes)
        for (bool bias : {true, false}) {
            CAPTURE(s.N);
            CAPTURE(s.C);
            CAPTURE(bias);
            check_forward(Act::gelu, s, bias);
        }
}

TEST_CASE("gpu bias + gelu backward against the CPU") {
    for (Shape s : kShapes)
        for (bool bias : {true, false}) {
            CAPTURE(s.N);
            CAPTURE(s.C);
            CAPTURE(bias);
            check_backward(Act::gelu, s, bias);
        }
}

TEST_CASE("gpu bias + relu forward against the CPU") {
    for (Shape s : kShapes)
        for (bool bias : {true, false}) {
            CAPTURE(s.N);
            CAPTURE(s.C);
            CAPTURE(bias);
            check_forward(Act::relu, s, bias);
        }
}

TEST_CASE("gpu bias + relu backward against the CPU") {
    for (Shape s : kShapes)
        for (bool bias : {true, false}) {
            CAPTURE(s.N);
            CAPTURE(s.C);
            CAPTURE(bias);
            check_backward(Act::relu, s, bias);
        }
}

TEST_CASE("gpu bias + activation: N = 0 or C = 0 touch nothing") {
    auto buf = gt::to_device(std::vector<float>(8, 3.0f));
    cuda::bias_gelu_forward(buf.get(), buf.get(), nullptr, 0, 8);
    cuda::bias_relu_backward(buf.get(), buf.get(), buf.get(), buf.get(), nullptr, nullptr, 8, 0);
    gt::check_equal(buf.download(), std::vector<float>(8, 3.0f), "untouched");
    CHECK_THROWS_AS(cuda::bias_gelu_backward(buf.get(), nullptr, buf.get(), nullptr, nullptr,
                                             nullptr, 2, 4),
                    std::invalid_argument);
}

TEST_CASE("gpu bias + activation backward from the pre-activation's bf16 copy") {
    for (Act a : {Act::gelu, Act::relu})
        for (Shape s : kShapes)
            for (bool bias : {true, false}) {
                CAPTURE(static_cast<int>(a));
                CAPTURE(s.N);
                CAPTURE(s.C);
                CAPTURE(bias);
                check_backward(a, s, bias, true);
            }
}
