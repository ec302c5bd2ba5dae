// residual_forward / residual_backward: CUDA twin against the CPU.
//
// Tolerance: exact. Each output element is one IEEE fp32 addition on both sides (no product,
// so no fused multiply-add can change the rounding), hence bit-identical results.
#include "gpu_check.hpp"

#include "cpu/residual.hpp"
#include "cuda/residual.cuh"

namespace cpu = mb::kernels::cpu;
namespace cuda = mb::kernels::cuda;

namespace {

// Sizes around the 256-thread block and far beyond one grid pass of a single block.
const std::size_t kSizes[] = {1, 255, 256, 257, 1000003};

}  // namespace

TEST_CASE("gpu residual forward equals the CPU exactly, also in place") {
    for (std::size_t n : kSizes) {
        CAPTURE(n);
        const auto a = kt::random_floats(n, 1), b = kt::random_floats(n, 2);
        std::vector<float> want(n);
        cpu::residual_forward(want.data(), a.data(), b.data(), n);

        auto da = gt::to_device(a), db = gt::to_device(b);
        auto out = gt::nan_buffer(n);
        cuda::residual_forward(out.get(), da.get(), db.get(), n);
        gt::check_equal(out.download(), want, "residual out");

        cuda::residual_forward(da.get(), da.get(), db.get(), n);  // out == a
        gt::check_equal(da.download(), want, "residual out, in place");
    }
}

TEST_CASE("gpu residual backward accumulates exactly as the CPU; null skips") {
    for (std::size_t n : kSizes) {
        CAPTURE(n);
        const auto g = kt::random_floats(n, 3);
        const auto a0 = kt::random_floats(n, 4), b0 = kt::random_floats(n, 5);
        auto want_a = a0, want_b = b0;
        cpu::residual_backward(want_a.data(), want_b.data(), g.data(), n);
        REQUIRE(gt::differs(want_a, a0));

        auto dg = gt::to_device(g), da = gt::to_device(a0), db = gt::to_device(b0);
        cuda::residual_backward(da.get(), db.get(), dg.get(), n);
        gt::check_equal(da.download(), want_a, "residual da");
        gt::check_equal(db.download(), want_b, "residual db");

        // Only da: db must stay as it was.
        auto da2 = gt::to_device(a0), db2 = gt::to_device(b0);
        cuda::residual_backward(da2.get(), nullptr, dg.get(), n);
        cuda::residual_backward(nullptr, nullptr, dg.get(), n);  // a no-op
        gt::check_equal(da2.download(), want_a, "residual da alone");
        gt::check_equal(db2.download(), b0, "residual db untouched");
    }
}
