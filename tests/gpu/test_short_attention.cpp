// short_attention_forward / short_attention_backward: CUDA twin against the CPU twin.
//
// Tolerances (inputs uniform in [-1.5, 1.5], so scores stay within about ±2.25·sqrt(d)); the
// same as test_attention.cpp's, for the same reasons, with sums over at most 256 keys:
// - out: 1e-4 relative + 1e-5 absolute. A softmax-weighted mean of values of magnitude
//   <= 1.5; the two sum the softmax in different orders (warp butterfly against a vectorised
//   loop), use expf against exp_approx, and the GPU contracts the dot products into fused
//   multiply-adds: differences of a few fp32 ulps of 1.
// - lse: 1e-5 relative + 1e-5 absolute (an exact fp32 max plus the log of a sum of at most T
//   terms in [0, 1]).
// - dq, dk, dv: increments over the random starting gradient, each part separately, 1e-4
//   relative to the largest increment of the whole gradient (at T = 1 dq and dk are rounding
//   noise; gt::check_gradient_parts) plus 5e-7 absolute (the starting values, |x| < 1,
//   contribute up to one ulp of rounding on each side).
// - lse = null in the forward, and two backward runs: bit-identical.
#include "attention_parity.hpp"
#include "gpu_check.hpp"

#include "cpu/short_attention.hpp"
#include "cuda/short_attention.cuh"

#include <cstdint>
#include <stdexcept>

namespace cpu = mb::kernels::cpu;
namespace cuda = mb::kernels::cuda;

namespace {

// The table above.
constexpr gt::AttentionTolerances kTolerances{1e-4, 1e-5, 1e-5, 1e-5, 1e-4, 5e-7};

// A shape the CPU takes but this GPU's shared memory does not (sm_86 and sm_89 allow a block
// 99 KiB) must be refused with std::invalid_argument, which a model never meets: its stacks
// ask their backend first and take the tiled attention.
void check_shape(const gt::AttentionShape& s, std::uint32_t seed) {
    REQUIRE(cpu::short_attention_fits(s.T, s.d));
    if (!cuda::short_attention_fits(s.T, s.d)) {
        MESSAGE("T = " << s.T << ", d = " << s.d << ": more shared memory than this GPU allows ("
                       << cuda::short_attention_max_smem_bytes() << " bytes); refusal checked");
        auto buf = gt::to_device(std::vector<float>(8, 0.0f));
        CHECK_THROWS_AS(cuda::short_attention_backward(buf.get(), buf.get(), buf.get(), buf.get(),
                                                       buf.get(), 1, s.T, 1, s.d),
                        std::invalid_argument);
        return;
    }
    gt::check_attention_parity({cpu::short_attention_forward, cpu::short_attention_backward},
                               {cuda::short_attention_forward, cuda::short_attention_backward},
                               kTolerances, s, seed, "short attention");
}

}  // namespace

TEST_CASE("gpu short attention forward and backward match the CPU") {
    // Odd lengths, one warp of keys and a key past it, the patch sizes (8 text, 32 audio, 192
    // images), and the longest.
    std::uint32_t seed = 1;
    for (int T : {1, 7, 8, 31, 32, 33, 192, 255, 256})
        for (int d : {8, 32, 64})
            for (int H : {1, 3}) check_shape({2, T, H, d}, seed += 10);
}

TEST_CASE("gpu short attention: head sizes that are not a warp multiple, and the limits") {
    check_shape({2, 33, 2, 128}, 300);   // the widest head
    check_shape({1, 125, 2, 128}, 310);  // and the longest sequence it fits (backward: 159 KiB)
    check_shape({1, 65, 2, 33}, 320);
    check_shape({2, 70, 1, 1}, 330);
    check_shape({1, 177, 1, 96}, 340);   // the longest at d = 96
}

TEST_CASE("gpu short attention: the local models' shapes, over more blocks than one wave") {
    // One block per (sequence, head): 1024 and 600 blocks, against at most 4 resident blocks of
    // the forward (2 of the backward, by registers) on each of an H100's 132 SMs.
    check_shape({256, 8, 4, 32}, 400);   // text: P = 8, heads of 32
    check_shape({75, 32, 8, 64}, 410);   // audio: P = 32, heads of 64
}

TEST_CASE("gpu short attention: the device's shared memory bounds the shapes it takes") {
    const std::size_t max = cuda::short_attention_max_smem_bytes();
    MESSAGE("short attention may use " << max << " bytes of shared memory per block here");
    CHECK(max > 48 * 1024);   // every GPU since Volta lets a block opt in past 48 KiB
    CHECK(max <= cpu::kShortAttentionMaxSmemBytes);
    for (int T : {8, 32, 64, 125, 126, 192, 256})
        for (int d : {32, 64, 96, 128})
            CHECK(cuda::short_attention_fits(T, d) == cpu::short_attention_fits(T, d, max));
}

TEST_CASE("gpu short attention: empty shapes write nothing; shapes that do not fit throw") {
    auto buf = gt::to_device(std::vector<float>(8, 7.0f));
    cuda::short_attention_forward(buf.get(), buf.get(), buf.get(), 2, 0, 1, 4);
    cuda::short_attention_forward(buf.get(), buf.get(), buf.get(), 0, 2, 1, 4);
    cuda::short_attention_backward(buf.get(), buf.get(), buf.get(), buf.get(), buf.get(), 1, 2, 0,
                                   4);
    gt::check_equal(buf.download(), std::vector<float>(8, 7.0f), "untouched");
    CHECK_THROWS_AS(cuda::short_attention_forward(buf.get(), nullptr, buf.get(), 1,
                                                  cpu::kShortAttentionMaxT + 1, 1, 8),
                    std::invalid_argument);
    CHECK_THROWS_AS(cuda::short_attention_forward(buf.get(), nullptr, buf.get(), 1, 1, 1,
                                                  cpu::kShortAttentionMaxHeadDim + 1),
                    std::invalid_argument);
    CHECK_THROWS_AS(cuda::short_attention_backward(buf.get(), buf.get(), buf.get(), buf.get(),
                                                   buf.get(), 1, 126, 1, 128),
                    std::invalid_argument);
    CHECK_THROWS_AS(cuda::short_attention_backward(buf.get(), buf.get(), buf.get(), buf.get(),
                                                   buf.get(), 1, 1, 1, 0),
                    std::invalid_argument);
}
