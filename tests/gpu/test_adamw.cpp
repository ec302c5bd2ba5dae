// adamw_step, grad_norm_squared, scale_grads, clip_grad_norm: CUDA twins against the CPU.
//
// Tolerances:
// - adamw_step: 1e-5 relative + 1e-7 absolute on params, m and v. The formula is the same
//   fp32 sequence (bias corrections computed on the host identically), but either side may
//   fuse a multiply-add, and m can cancel to near 0 (hence the absolute term, ~1 ulp of 0.1).
// - grad_norm_squared: 1e-12 relative. Products of two floats are exact in double, and n
//   double additions in any order differ by far less.
// - scale_grads: exact (one fp32 multiply).
// - clip_grad_norm: the norm to 1e-6 relative (it is rounded to float), the clipped gradients
//   to 1e-6 relative (the scale max_norm / norm may differ in its last bit).
#include "gpu_check.hpp"

#include "cpu/adamw.hpp"
#include "cpu/bf16.hpp"
#include "cuda/adamw.cuh"

#include <stdexcept>

namespace cpu = mb::kernels::cpu;
namespace cuda = mb::kernels::cuda;

namespace {

// Around the 256-thread block and the 65536-element chunks of the norm.
const std::size_t kSizes[] = {1, 257, 65535, 65536, 65537, 300007};

}  // namespace

TEST_CASE("gpu adamw: two steps against the CPU, with weight decay") {
    for (std::size_t n : kSizes) {
        CAPTURE(n);
        auto p = kt::random_floats(n, 1), m = std::vector<float>(n, 0.0f),
             v = std::vector<float>(n, 0.0f);
        auto dp = gt::to_device(p), dm = gt::to_device(m), dv = gt::to_device(v);
        for (long t = 1; t <= 2; ++t) {
            CAPTURE(t);
            const auto g = kt::random_floats(n, 10 + static_cast<std::uint32_t>(t));
            auto dg = gt::to_device(g);
            const auto p_before = p;
            cpu::adamw_step(p.data(), nullptr, g.data(), m.data(), v.data(), n, t, 1e-2f, 0.9f, 0.999f,
                            1e-8f, 0.1f);
            REQUIRE(gt::differs(p, p_before));
            cuda::adamw_step(dp.get(), nullptr, dg.get(), dm.get(), dv.get(), n, t, 1e-2f, 0.9f, 0.999f,
                             1e-8f, 0.1f);
            kt::check_close(dp.download(), p, 1e-5, 1e-7, "adamw params");
            kt::check_close(dm.download(), m, 1e-5, 1e-7, "adamw m");
            kt::check_close(dv.download(), v, 1e-5, 1e-7, "adamw v");
            // Continue from the GPU's state, so that the second step compares one step only.
            p = dp.download();
            m = dm.download();
            v = dv.download();
        }
    }
    auto buf = gt::to_device(std::vector<float>(2, 0.0f));
    CHECK_THROWS_AS(cuda::adamw_step(buf.get(), nullptr, buf.get(), buf.get(), buf.get(), 2, 0, 1e-3f,
                                     0.9f, 0.999f, 1e-8f, 0.0f),
                    std::invalid_argument);
}

TEST_CASE("gpu adamw: the bf16 copy holds the rounded new parameters, the step is unchanged") {
    for (std::size_t n : kSizes) {
        CAPTURE(n);
        const auto p = kt::random_floats(n, 21), g = kt::random_floats(n, 22);
        const std::vector<float> zeros(n, 0.0f);
        auto dp = gt::to_device(p), dm = gt::to_device(zeros), dv = gt::to_device(zeros);
        auto dp2 = gt::to_device(p), dm2 = gt::to_device(zeros), dv2 = gt::to_device(zeros);
        auto dg = gt::to_device(g);
        gt::DeviceBuffer<std::uint16_t> copy(std::vector<std::uint16_t>(n, 0xABCD));
        for (long t = 1; t <= 2; ++t) {
            cuda::adamw_step(dp.get(), copy.get(), dg.get(), dm.get(), dv.get(), n, t, 1e-2f, 0.9f,
                             0.98f, 1e-8f, 0.1f);
            cuda::adamw_step(dp2.get(), nullptr, dg.get(), dm2.get(), dv2.get(), n, t, 1e-2f, 0.9f,
                             0.98f, 1e-8f, 0.1f);
        }
        const auto params = dp.download();
        gt::check_bitwise(params, dp2.download(), "adamw params with and without the copy");
        gt::check_bitwise(dm.download(), dm2.download(), "adamw m with and without the copy");
        std::vector<std::uint16_t> want(n);
        for (std::size_t i = 0; i < n; ++i) want[i] = cpu::bf16_bits(params[i]);
        gt::check_equal(copy.download(), want, "adamw bf16 copy");
    }
}

TEST_CASE("gpu grad_norm_squared equals the CPU's double sum") {
    CHECK(cuda::grad_norm_squared(nullptr, 0) == 0.0);
    for (std::size_t n : kSizes) {
        CAPTURE(n);
        const auto g = kt::random_floats(n, 2, -3.0f, 3.0f);
        const double want = cpu::grad_norm_squared(g.data(), n);
        REQUIRE(want > 0.0);
        auto dg = gt::to_device(g);
        const double got = cuda::grad_norm_squared(dg.get(), n);
        CHECK(got == doctest::Approx(want).epsilon(1e-12));
    }
}

TEST_CASE("gpu scale_grads is the CPU's product, exactly") {
    for (std::size_t n : kSizes) {
        CAPTURE(n);
        auto g = kt::random_floats(n, 3);
        auto dg = gt::to_device(g);
        cpu::scale_grads(g.data(), n, 0.37f);
        cuda::scale_grads(dg.get(), n, 0.37f);
        gt::check_equal(dg.download(), g, "scaled gradients");
    }
}

TEST_CASE("gpu clip_grad_norm: clips above max_norm, leaves the gradients alone below") {
    for (std::size_t n : kSizes) {
        CAPTURE(n);
        const auto g0 = kt::random_floats(n, 4);
        auto g = g0;
        // Half the norm: every gradient gets scaled by about 1/2.
        const auto max_norm =
            static_cast<float>(0.5 * std::sqrt(cpu::grad_norm_squared(g0.data(), n)));
        const float want_norm = cpu::clip_grad_norm(g.data(), n, max_norm);
        REQUIRE(gt::differs(g, g0));
        auto dg = gt::to_device(g0);
        const float norm = cuda::clip_grad_norm(dg.get(), n, max_norm);
        CHECK(norm == doctest::Approx(want_norm).epsilon(1e-6));
        kt::check_close(dg.download(), g, 1e-6, 0.0, "clipped gradients");

        auto dg2 = gt::to_device(g0);
        const float norm2 = cuda::clip_grad_norm(dg2.get(), n, 2.0f * want_norm + 1.0f);
        CHECK(norm2 == doctest::Approx(want_norm).epsilon(1e-6));
        gt::check_equal(dg2.download(), g0, "gradients below max_norm");
    }
}
