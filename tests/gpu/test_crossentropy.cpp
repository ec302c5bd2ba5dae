// crossentropy_count / _forward / _backward: CUDA twin against the CPU.
//
// Tolerances:
// - count: exact.
// - row losses: 1e-4 relative + 1e-5 absolute. The logits come from different fp32 products
//   (cuBLAS against oneDNN: sums over D in different orders) and different exp/log (the
//   device's expf/logf against exp_approx and std::log, both within about 1 ulp).
// - loss sum: 1e-5 relative (a double sum of those row losses).
// - dh, dE: products summed over V (dh) or N (dE) in different orders: 1e-4 relative to the
//   largest entry (gt::check_close_scaled).
// - rows V.. of dE (padding ids) and masked rows of dh: exact, i.e. untouched or unchanged.
#include "gpu_check.hpp"

#include "cpu/crossentropy.hpp"
#include "cuda/crossentropy.cuh"

#include <random>
#include <stdexcept>

namespace cpu = mb::kernels::cpu;
namespace cuda = mb::kernels::cuda;

namespace {

std::vector<std::int32_t> random_targets(int N, int V, std::uint32_t seed, double masked) {
    std::mt19937 gen(seed);
    std::uniform_int_distribution<int> cls(0, V - 1);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::vector<std::int32_t> t(N);
    for (auto& x : t) x = u(gen) < masked ? -1 : cls(gen);
    return t;
}

struct Case {
    int N, D, V, Vtable;  // rows V..Vtable-1 of the table are padding ids, never classes
    double masked;        // fraction of rows with target -1
};

void check_case(const Case& c, std::uint32_t seed) {
    const int N = c.N, D = c.D, V = c.V;
    const auto h = kt::random_floats(static_cast<std::size_t>(N) * D, seed, -1.5f, 1.5f);
    const auto E = kt::random_floats(static_cast<std::size_t>(c.Vtable) * D, seed + 1, -1.5f, 1.5f);
    auto targets = random_targets(N, V, seed + 2, c.masked);
    if (N >= 3 && c.masked < 1.0) {  // pin a masked row and both extreme classes
        targets[0] = -1;
        targets[1] = V - 1;
        targets[2] = 0;
    }

    // Forward.
    std::vector<float> want_losses(N, 7.0f);
    const cpu::CrossEntropySum want =
        cpu::crossentropy_forward(want_losses.data(), h.data(), E.data(), targets.data(), N, D, V);
    const std::int64_t want_count = cpu::crossentropy_count(targets.data(), N);
    REQUIRE(want.count == want_count);

    auto dh_in = gt::to_device(h), dE_in = gt::to_device(E);
    auto dt = gt::to_device(targets);
    CHECK(cuda::crossentropy_count(dt.get(), N) == want_count);
    auto losses = gt::nan_buffer(static_cast<std::size_t>(N));
    const cuda::CrossEntropySum got =
        cuda::crossentropy_forward(losses.get(), dh_in.get(), dE_in.get(), dt.get(), N, D, V);
    CHECK(got.count == want.count);
    CHECK(got.loss == doctest::Approx(want.loss).epsilon(1e-5));
    kt::check_close(losses.download(), want_losses, 1e-4, 1e-5, "crossentropy row losses");
    const cuda::CrossEntropySum got_null =
        cuda::crossentropy_forward(nullptr, dh_in.get(), dE_in.get(), dt.get(), N, D, V);
    CHECK(got_null.loss == got.loss);  // the same sum, bit for bit, without the losses buffer
    CHECK(got_null.count == got.count);

    // Backward, accumulating into non-zero gradients, with the mean-loss scale.
    const float dloss = want_count > 0 ? 1.0f / static_cast<float>(want_count) : 1.0f;
    const auto dh0 = kt::random_floats(h.size(), seed + 3);
    const auto dE0 = kt::random_floats(E.size(), seed + 4);
    auto want_dh = dh0, want_dE = dE0;
    const cpu::CrossEntropySum want_b = cpu::crossentropy_backward(
        want_dh.data(), want_dE.data(), h.data(), E.data(), targets.data(), dloss, N, D, V);
    if (want_count > 0) {
        REQUIRE(gt::differs(want_dh, dh0));
        REQUIRE(gt::differs(want_dE, dE0));
    }

    auto dh = gt::to_device(dh0), dE = gt::to_device(dE0);
    const cuda::CrossEntropySum got_b = cuda::crossentropy_backward(
        dh.get(), dE.get(), dh_in.get(), dE_in.get(), dt.get(), dloss, N, D, V);
    CHECK(got_b.count == want_b.count);
    CHECK(got_b.loss == doctest::Approx(want_b.loss).epsilon(1e-5));
    const auto got_dh = dh.download(), got_dE = dE.download();
    gt::check_close_scaled(got_dh, want_dh, 1e-4, "crossentropy dh");
    gt::check_close_scaled(got_dE, want_dE, 1e-4, "crossentropy dE");

    // Padding rows of dE are never written; masked rows of dh get nothing.
    const std::size_t classes = static_cast<std::size_t>(V) * D;
    gt::check_equal(std::vector<float>(got_dE.begin() + classes, got_dE.end()),
                    std::vector<float>(dE0.begin() + classes, dE0.end()), "dE padding rows");
    for (int n = 0; n < N; ++n)
        if (targets[n] < 0) {
            const auto row = got_dh.begin() + static_cast<std::ptrdiff_t>(n) * D;
            const auto row0 = dh0.begin() + static_cast<std::ptrdiff_t>(n) * D;
            gt::check_equal(std::vector<float>(row, row + D), std::vector<float>(row0, row0 + D),
                            "dh of a masked row");
        }

    // One destination at a time.
    auto dh_only = gt::to_device(dh0), dE_only = gt::to_device(dE0);
    cuda::crossentropy_backward(dh_only.get(), nullptr, dh_in.get(), dE_in.get(), dt.get(), dloss,
                                N, D, V);
    cuda::crossentropy_backward(nullptr, dE_only.get(), dh_in.get(), dE_in.get(), dt.get(), dloss,
                                N, D, V);
    gt::check_close_scaled(dh_only.download(), want_dh, 1e-4, "crossentropy dh alone");
    gt::check_close_scaled(dE_only.download(), want_dE, 1e-4, "crossentropy dE alone");
}

}  // namespace

TEST_CASE("gpu crossentropy: small shapes with masked rows and padding ids") {
    check_case({9, 5, 7, 10, 0.3}, 1);
    check_case({1, 3, 4, 4, 0.0}, 2);      // N = 1
    check_case({33, 17, 259, 260, 0.2}, 3);  // V of the byte vocabulary, not a warp multiple
}

TEST_CASE("gpu crossentropy: every row masked gives zero loss and no gradient") {
    check_case({5, 4, 6, 6, 1.0}, 4);  // masked = 1: every target is -1
}

TEST_CASE("gpu crossentropy: several chunks of rows") {
    // V = 300: the GPU holds 2^22 / 300 = 13981 rows of logits at once, so N = 14000 takes a
    // second, 19-row chunk (and the CPU, at 2^18 / 300 = 873 rows, many more).
    check_case({14000, 16, 300, 301, 0.1}, 5);
}

TEST_CASE("gpu crossentropy: targets at or above V are rejected before anything is written") {
    const int N = 3, D = 2, V = 4;
    auto h = gt::to_device(std::vector<float>(N * D, 0.5f));
    auto E = gt::to_device(std::vector<float>(V * D, 0.25f));
    auto targets = gt::to_device(std::vector<std::int32_t>{0, -1, 4});
    auto losses = gt::to_device(std::vector<float>(N, 7.0f));
    auto dh = gt::to_device(std::vector<float>(N * D, 1.0f));
    CHECK_THROWS_WITH_AS(
        cuda::crossentropy_forward(losses.get(), h.get(), E.get(), targets.get(), N, D, V),
        "crossentropy_forward: target 4 at row 2 is not below V = 4", std::out_of_range);
    CHECK_THROWS_AS(cuda::crossentropy_backward(dh.get(), nullptr, h.get(), E.get(),
                                                targets.get(), 1.0f, N, D, V),
                    std::out_of_range);
    gt::check_equal(losses.download(), std::vector<float>(N, 7.0f), "losses untouched");
    gt::check_equal(dh.download(), std::vector<float>(N * D, 1.0f), "dh untouched");
}
