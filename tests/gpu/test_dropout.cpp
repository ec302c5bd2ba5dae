// dropout_forward / dropout_backward: CUDA twin against the CPU. Both draw the mask from the
// same inline functions of cpu/dropout.hpp.
//
// Tolerances:
// - forward: exact. Each element is inp · (keep · scale) with keep · scale either 0 or the
//   same fp32 scale (computed on the host as the CPU does): one rounding on both sides. This
//   compares the masks element by element: a kept/dropped disagreement is a 0 against a
//   non-zero value.
// - backward into a zero gradient: exact (0 + x·f rounds once, fused or not).
// - backward into a non-zero gradient: 1e-6 relative + 1e-6 absolute. dinp + dout · f may be
//   one fused multiply-add on either side (nvcc contracts by default; GCC's AVX2/AVX-512
//   clones of the CPU loop may), so the two can differ by half an ulp of the product
//   |dout · f| <= 4 (p = 0.75), about 2.4e-7, even where the sum itself cancels to near 0.
#include "gpu_check.hpp"

#include "cpu/dropout.hpp"
#include "cuda/dropout.cuh"

#include <stdexcept>

namespace cpu = mb::kernels::cpu;
namespace cuda = mb::kernels::cuda;

TEST_CASE("gpu dropout forward: the same mask and values as the CPU, bit for bit") {
    struct Case {
        std::size_t n;
        float p;
        std::uint64_t seed, offset;
    };
    const Case cases[] = {
        {1, 0.5f, 1, 0},           {257, 0.1f, 2, 0},          {4099, 0.5f, 3, 12345},
        {1000003, 0.9f, 4, 7},     {65536, 0.3f, 5, 1ull << 40},  // 64-bit element indices
        {1000, 0.0f, 6, 0},        // p = 0 is a copy
    };
    for (const Case& c : cases) {
        CAPTURE(c.n);
        CAPTURE(c.p);
        // Inputs never 0, so a 0 output means dropped.
        const auto x = kt::random_floats(c.n, 10, 0.5f, 1.5f);
        std::vector<float> want(c.n);
        cpu::dropout_forward(want.data(), x.data(), c.n, c.p, c.seed, c.offset);
        const auto dropped = std::count(want.begin(), want.end(), 0.0f);
        if (c.p == 0.0f) {
            CHECK(dropped == 0);
        } else if (c.n >= 1000) {
            // The comparison below tests a real mask: both kept and dropped elements occur.
            CHECK(dropped > 0);
            CHECK(dropped < static_cast<long>(c.n));
        }

        auto dx = gt::to_device(x);
        auto out = gt::nan_buffer(c.n);
        cuda::dropout_forward(out.get(), dx.get(), c.n, c.p, c.seed, c.offset);
        gt::check_equal(out.download(), want, "dropout out");

        cuda::dropout_forward(dx.get(), dx.get(), c.n, c.p, c.seed, c.offset);  // in place
        gt::check_equal(dx.download(), want, "dropout out, in place");
    }
}

TEST_CASE("gpu dropout forward: another seed or offset gives another mask") {
    // Guards the parity test above against a mask that ignores its seed or offset on one side.
    const std::size_t n = 4096;
    const auto x = kt::random_floats(n, 11, 0.5f, 1.5f);
    auto dx = gt::to_device(x);
    auto a = gt::nan_buffer(n), b = gt::nan_buffer(n), c = gt::nan_buffer(n);
    cuda::dropout_forward(a.get(), dx.get(), n, 0.5f, 1, 0);
    cuda::dropout_forward(b.get(), dx.get(), n, 0.5f, 2, 0);
    cuda::dropout_forward(c.get(), dx.get(), n, 0.5f, 1, 1);
    CHECK(a.download() != b.download());
    CHECK(a.download() != c.download());
}

TEST_CASE("gpu dropout backward: the forward's mask, accumulated like the CPU") {
    for (float p : {0.0f, 0.25f, 0.75f}) {
        for (std::size_t n : {std::size_t{1}, std::size_t{300}, std::size_t{100001}}) {
            CAPTURE(p);
            CAPTURE(n);
            const std::uint64_t seed = 99, offset = 5;
            const auto g = kt::random_floats(n, 12);

            // From zero: exact.
            std::vector<float> want0(n, 0.0f);
            cpu::dropout_backward(want0.data(), g.data(), n, p, seed, offset);
            auto dg = gt::to_device(g);
            auto d0 = gt::to_device(std::vector<float>(n, 0.0f));
            cuda::dropout_backward(d0.get(), dg.get(), n, p, seed, offset);
            gt::check_equal(d0.download(), want0, "dropout dinp from zero");

            // Accumulating into an existing gradient.
            const auto init = kt::random_floats(n, 13);
            auto want = init;
            cpu::dropout_backward(want.data(), g.data(), n, p, seed, offset);
            auto d = gt::to_device(init);
            cuda::dropout_backward(d.get(), dg.get(), n, p, seed, offset);
            kt::check_close(d.download(), want, 1e-6, 1e-6, "dropout dinp accumulated");
        }
    }
}

TEST_CASE("gpu dropout: p outside [0, 1) is rejected as on the CPU") {
    auto buf = gt::to_device(std::vector<float>(4, 1.0f));
    CHECK_THROWS_AS(cuda::dropout_forward(buf.get(), buf.get(), 4, 1.0f, 1, 0),
                    std::invalid_argument);
    CHECK_THROWS_AS(cuda::dropout_forward(buf.get(), buf.get(), 4, -0.1f, 1, 0),
                    std::invalid_argument);
    CHECK_THROWS_AS(cuda::dropout_backward(buf.get(), buf.get(), 4, 1.5f, 1, 0),
                    std::invalid_argument);
    gt::check_equal(buf.download(), std::vector<float>(4, 1.0f), "dropout buffer untouched");
}
