// layernorm_forward / layernorm_backward: CUDA twin against the CPU.
//
// Tolerances (fp32 row reductions over C values and column reductions over N rows, summed in
// different orders by the two twins):
// - out, mean, rstd: 1e-4 relative + 1e-5 absolute. Inputs sit around an offset of 3, so the
//   mean carries an absolute error of a few ulp of 3 (~1e-6), which reaches out multiplied by
//   rstd (~1.7) and the weights (<= 1.5).
// - dinp: 1e-4 relative + 1e-5 · max(1, largest rstd) absolute. dinp is rstd times a
//   difference of O(1) terms, each rounded (or fused) differently on the two sides; for C = 1
//   the row has zero variance, rstd = 1/sqrt(eps) ~ 316, and the true dinp of 0 comes out as
//   316 times the rounding error of dout · weight.
// - dweight, dbias: sums over N rows: 1e-4 relative to the largest column sum.
#include "gpu_check.hpp"

#include "cpu/layernorm.hpp"
#include "cuda/layernorm.cuh"

namespace cpu = mb::kernels::cpu;
namespace cuda = mb::kernels::cuda;

namespace {

struct Shape {
    int N, C;
};

// C = 1 (zero variance), C below, at and above the warp width, a wide row; N not a multiple
// of the 8 rows per block nor of the 16-row tasks; N > 256 · 16 for full tasks.
const Shape kShapes[] = {{1, 1}, {1, 33}, {5, 32}, {13, 257}, {67, 1024}, {4133, 48}};

// The absolute tolerance of dinp (see the file comment).
double dinp_abs_tol(const std::vector<float>& rstd) {
    double mx = 1.0;
    for (float r : rstd) mx = std::max(mx, static_cast<double>(r));
    return 1e-5 * mx;
}

struct Data {
    std::vector<float> x, w, b;
};

Data make(Shape s, std::uint32_t seed) {
    const std::size_t n = static_cast<std::size_t>(s.N) * s.C;
    return {kt::random_floats(n, seed, 2.0f, 4.0f), kt::random_floats(s.C, seed + 1, 0.5f, 1.5f),
            kt::random_floats(s.C, seed + 2)};
}

}  // namespace

TEST_CASE("gpu layernorm forward against the CPU; mean and rstd may be null") {
    for (Shape s : kShapes) {
        CAPTURE(s.N);
        CAPTURE(s.C);
        const int N = s.N, C = s.C;
        const std::size_t n = static_cast<std::size_t>(N) * C;
        const Data d = make(s, 1);
        std::vector<float> want(n), want_mean(N), want_rstd(N);
        cpu::layernorm_forward(want.data(), want_mean.data(), want_rstd.data(), d.x.data(),
                               d.w.data(), d.b.data(), N, C);

        auto x = gt::to_device(d.x), w = gt::to_device(d.w), b = gt::to_device(d.b);
        auto out = gt::nan_buffer(n), mean = gt::nan_buffer(N), rstd = gt::nan_buffer(N);
        cuda::layernorm_forward(out.get(), mean.get(), rstd.get(), x.get(), w.get(), b.get(), N, C);
        kt::check_close(out.download(), want, 1e-4, 1e-5, "layernorm out");
        kt::check_close(mean.download(), want_mean, 1e-4, 1e-5, "layernorm mean");
        kt::check_close(rstd.download(), want_rstd, 1e-4, 1e-5, "layernorm rstd");

        auto out2 = gt::nan_buffer(n);
        cuda::layernorm_forward(out2.get(), nullptr, nullptr, x.get(), w.get(), b.get(), N, C);
        kt::check_close(out2.download(), want, 1e-4, 1e-5, "layernorm out without statistics");
    }
}

TEST_CASE("gpu layernorm backward against the CPU, accumulating; each gradient alone") {
    for (Shape s : kShapes) {
        CAPTURE(s.N);
        CAPTURE(s.C);
        const int N = s.N, C = s.C;
        const std::size_t n = static_cast<std::size_t>(N) * C;
        const Data d = make(s, 2);
        // The CPU's saved statistics feed both backward passes, so only the backward differs.
        std::vector<float> y(n), mean(N), rstd(N);
        cpu::layernorm_forward(y.data(), mean.data(), rstd.data(), d.x.data(), d.w.data(),
                               d.b.data(), N, C);
        const auto g = kt::random_floats(n, 3);
        const auto dinp0 = kt::random_floats(n, 4), dw0 = kt::random_floats(C, 5),
                   db0 = kt::random_floats(C, 6);
        auto want_dinp = dinp0, want_dw = dw0, want_db = db0;
        cpu::layernorm_backward(want_dinp.data(), want_dw.data(), want_db.data(), g.data(),
                                d.x.data(), d.w.data(), mean.data(), rstd.data(), N, C);
        REQUIRE(gt::differs(want_db, db0));
        if (C > 1) {  // for C = 1, x - mean = 0: dweight is 0 and dinp 0 (rounding aside)
            REQUIRE(gt::differs(want_dw, dw0));
            REQUIRE(gt::differs(want_dinp, dinp0));
        }
        const double dinp_tol = dinp_abs_tol(rstd);

        auto x = gt::to_device(d.x), w = gt::to_device(d.w), dg = gt::to_device(g);
        auto dm = gt::to_device(mean), dr = gt::to_device(rstd);
        auto dinp = gt::to_device(dinp0), dw = gt::to_device(dw0), db = gt::to_device(db0);
        cuda::layernorm_backward(dinp.get(), dw.get(), db.get(), dg.get(), x.get(), w.get(),
                                 dm.get(), dr.get(), N, C);
        kt::check_close(dinp.download(), want_dinp, 1e-4, dinp_tol, "layernorm dinp");
        gt::check_close_scaled(dw.download(), want_dw, 1e-4, "layernorm dweight");
        gt::check_close_scaled(db.download(), want_db, 1e-4, "layernorm dbias");

        // One destination at a time: the others stay untouched.
        auto dinp1 = gt::to_device(dinp0), dw1 = gt::to_device(dw0), db1 = gt::to_device(db0);
        cuda::layernorm_backward(dinp1.get(), nullptr, nullptr, dg.get(), x.get(), w.get(),
                                 dm.get(), dr.get(), N, C);
        kt::check_close(dinp1.download(), want_dinp, 1e-4, dinp_tol, "layernorm dinp alone");
        cuda::layernorm_backward(nullptr, dw1.get(), nullptr, dg.get(), x.get(), w.get(),
                                 dm.get(), dr.get(), N, C);
        gt::check_close_scaled(dw1.download(), want_dw, 1e-4, "layernorm dweight alone");
        gt::check_equal(db1.download(), db0, "layernorm dbias untouched");
        cuda::layernorm_backward(nullptr, nullptr, db1.get(), dg.get(), x.get(), w.get(),
                                 dm.get(), dr.get(), N, C);
        gt::check_close_scaled(db1.download(), want_db, 1e-4, "layernorm dbias alone");
    }
}

TEST_CASE("gpu layernorm: the CUDA statistics drive the CUDA backward like the CPU's") {
    // The training path: forward and backward both on the GPU.
    const Shape s{37, 200};
    const int N = s.N, C = s.C;
    const std::size_t n = static_cast<std::size_t>(N) * C;
    const Data d = make(s, 7);
    const auto g = kt::random_floats(n, 8);
    std::vector<float> y(n), mean(N), rstd(N), want_dinp(n, 0.0f), want_dw(C, 0.0f),
        want_db(C, 0.0f);
    cpu::layernorm_forward(y.data(), mean.data(), rstd.data(), d.x.data(), d.w.data(),
                           d.b.data(), N, C);
    cpu::layernorm_backward(want_dinp.data(), want_dw.data(), want_db.data(), g.data(),
                            d.x.data(), d.w.data(), mean.data(), rstd.data(), N, C);

    auto x = gt::to_device(d.x), w = gt::to_device(d.w), b = gt::to_device(d.b);
    auto dg = gt::to_device(g);
    auto out = gt::nan_buffer(n), dm = gt::nan_buffer(N), dr = gt::nan_buffer(N);
    cuda::layernorm_forward(out.get(), dm.get(), dr.get(), x.get(), w.get(), b.get(), N, C);
    auto dinp = gt::to_device(std::vector<float>(n, 0.0f));
    auto dw = gt::to_device(std::vector<float>(C, 0.0f)), db = gt::to_device(std::vector<float>(C, 0.0f));
    cuda::layernorm_backward(dinp.get(), dw.get(), db.get(), dg.get(), x.get(), w.get(), dm.get(),
                             dr.get(), N, C);
    kt::check_close(dinp.download(), want_dinp, 1e-4, dinp_abs_tol(rstd),
                    "layernorm dinp (GPU statistics)");
    gt::check_close_scaled(dw.download(), want_dw, 1e-4, "layernorm dweight (GPU statistics)");
    gt::check_close_scaled(db.download(), want_db, 1e-4, "layernorm dbias (GPU statistics)");
}
