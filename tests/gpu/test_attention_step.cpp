// attention_step (one query against a KV cache, for generation): CUDA twin against the CPU.
//
// Tolerance: 1e-5 relative + 2e-6 absolute. Each output is a softmax-weighted mean of values in
// [-1.5, 1.5] over n <= 700 positions, summed in another order (the CPU sums exp_approx terms in
// vector lanes, the GPU in a block-wide tree, and expf differs from exp_approx by an ulp or
// two), so outputs differ by a few fp32 ulps of their magnitude.
#include "gpu_check.hpp"

#include "cpu/attention_step.hpp"
#include "cpu/bf16.hpp"
#include "cuda/attention_step.cuh"

#include <array>
#include <cstdint>
#include <stdexcept>

namespace cpu = mb::kernels::cpu;
namespace cuda = mb::kernels::cuda;

namespace {

// B sequences, each with a cache laid out as the generator keeps it ([n, H·d], stride H·d,
// caches batch_stride apart) or as the qkv buffer of a forward pass ([n, 3, H, d], stride
// 3·H·d, keys at offset H·d and values at 2·H·d); queries in rows of a [B, 3, H, d] buffer.
void check_step(int B, int n, int H, int d, bool qkv_layout, std::uint32_t seed) {
    CAPTURE(B);
    CAPTURE(n);
    CAPTURE(H);
    CAPTURE(d);
    CAPTURE(qkv_layout);
    const std::size_t C = static_cast<std::size_t>(H) * d;
    const std::size_t stride = qkv_layout ? 3 * C : C;
    const std::size_t batch_stride = static_cast<std::size_t>(n + 3) * stride;  // spare rows
    const std::size_t q_stride = 3 * C;
    const auto q = kt::random_floats(B * q_stride, seed, -1.5f, 1.5f);
    const auto kc = kt::random_floats(B * batch_stride, seed + 1, -1.5f, 1.5f);
    const auto vc = kt::random_floats(B * batch_stride, seed + 2, -1.5f, 1.5f);
    const std::size_t koff = qkv_layout ? C : 0, voff = qkv_layout ? 2 * C : 0;
    const std::size_t nscores = static_cast<std::size_t>(B) * H * n;

    std::vector<float> want(B * C, 7.0f), want_scores(nscores);
    cpu::attention_step(want.data(), want_scores.data(), q.data(), kc.data() + koff,
                        vc.data() + voff, B, n, H, d, q_stride, stride, batch_stride);

    auto dq = gt::to_device(q), dk = gt::to_device(kc), dv = gt::to_device(vc);
    auto out = gt::nan_buffer(B * C), scores = gt::nan_buffer(nscores);
    cuda::attention_step(out.get(), scores.get(), dq.get(), dk.get() + koff, dv.get() + voff, B,
                         n, H, d, q_stride, stride, batch_stride);
    const auto got = out.download();
    kt::check_close(got, want, 1e-5, 2e-6, "attention_step out");

    // Deterministic: a second run gives the same bits.
    auto out2 = gt::nan_buffer(B * C);
    cuda::attention_step(out2.get(), scores.get(), dq.get(), dk.get() + koff, dv.get() + voff, B,
                         n, H, d, q_stride, stride, batch_stride);
    gt::check_bitwise(out2.download(), got, "attention_step rerun");
}

}  // namespace

TEST_CASE("cuda attention_step matches the CPU twin") {
    check_step(1, 1, 1, 1, false, 1);        // one position: the output is that position's value
    check_step(1, 1, 4, 16, false, 2);
    check_step(1, 7, 2, 8, true, 3);
    check_step(1, 129, 8, 64, false, 4);     // more positions than threads in the block
    check_step(1, 700, 4, 128, true, 5);     // the widest head
    check_step(1, 33, 3, 100, false, 6);     // d not a multiple of the warp
}

TEST_CASE("cuda attention_step over a batch of sequences matches the CPU twin") {
    check_step(5, 1, 2, 16, false, 7);
    check_step(3, 130, 4, 64, false, 8);
    check_step(4, 21, 3, 33, true, 9);
}

// attention_step_bf16: caches of bf16 patterns, against the CPU twin over the same patterns
// (the same values in fp32 arithmetic: the tolerance above).
TEST_CASE("cuda attention_step_bf16 over bf16 caches matches the CPU twin") {
    for (auto [B, n, H, d] : {std::array{1, 1, 2, 16}, std::array{3, 130, 4, 64},
                              std::array{2, 41, 2, 128}}) {
        CAPTURE(B);
        CAPTURE(n);
        const std::size_t C = static_cast<std::size_t>(H) * d, cache = static_cast<std::size_t>(n + 2) * C;
        const auto q = kt::random_floats(B * 3 * C, 70, -1.5f, 1.5f);
        const auto rk = kt::random_floats(B * cache, 71, -1.5f, 1.5f);
        const auto rv = kt::random_floats(B * cache, 72, -1.5f, 1.5f);
        std::vector<std::uint16_t> kc(rk.size()), vc(rv.size());
        for (std::size_t i = 0; i < kc.size(); ++i) {
            kc[i] = mb::kernels::cpu::bf16_bits(rk[i]);
            vc[i] = mb::kernels::cpu::bf16_bits(rv[i]);
        }
        const std::size_t nscores = static_cast<std::size_t>(B) * H * n;
        std::vector<float> want(B * C), want_scores(nscores);
        cpu::attention_step_bf16(want.data(), want_scores.data(), q.data(), kc.data(), vc.data(), B,
                                 n, H, d, 3 * C, C, cache);
        auto dq = gt::to_device(q);
        auto dk = gt::to_device(kc), dv = gt::to_device(vc);
        auto out = gt::nan_buffer(B * C), scores = gt::nan_buffer(nscores);
        cuda::attention_step_bf16(out.get(), scores.get(), dq.get(), dk.get(), dv.get(), B, n, H, d,
                                  3 * C, C, cache);
        kt::check_close(out.download(), want, 1e-5, 2e-6, "attention_step_bf16 out");
    }
}

TEST_CASE("cuda attention_step refuses what the CPU refuses, and heads over 128") {
    float* p = nullptr;
    CHECK_THROWS_AS(cuda::attention_step(p, p, p, p, p, 1, 0, 1, 8, 0, 8, 0), std::invalid_argument);
    CHECK_THROWS_AS(cuda::attention_step(p, p, p, p, p, 0, 1, 1, 8, 0, 8, 0), std::invalid_argument);
    CHECK_THROWS_AS(cuda::attention_step(p, p, p, p, p, 1, 1, 1, 129, 0, 129, 0),
                    std::invalid_argument);
}
