// attention_forward / attention_backward: CUDA twin against the CPU.
//
// Tolerances (inputs uniform in [-1.5, 1.5], so scores stay within about ±2.25·sqrt(d)):
// - out: 1e-4 relative + 1e-5 absolute. Each element is a softmax-weighted mean of values of
//   magnitude <= 1.5, summed in different orders (warp shuffles against the CPU's blocked
//   tiles), with the device's expf against the CPU's exp_approx (both within a few ulps):
//   differences are a few fp32 ulps of 1, around 1e-6.
// - lse: 1e-5 relative + 1e-5 absolute (m + log l: an fp32 max, which is exact, plus the log of
//   a sum of at most T terms in [0, 1]).
// - dq, dk, dv: compared as increments over the random starting gradient, each part (q, k, v)
//   separately, 1e-4 relative to the part's largest increment (gt::check_close_scaled) plus
//   5e-7 absolute: sums over up to T products in different orders, and the starting values
//   (|x| < 1) contribute up to one ulp (1.2e-7) of rounding on each side.
// - lse = null in the forward, and two backward runs: bit-identical.
#include "gpu_check.hpp"

#include "cpu/attention.hpp"
#include "cuda/attention.cuh"

#include <stdexcept>

namespace cpu = mb::kernels::cpu;
namespace cuda = mb::kernels::cuda;

namespace {

struct Shape {
    int B, T, H, d;
    std::size_t qkv_size() const { return static_cast<std::size_t>(B) * T * 3 * H * d; }
    std::size_t out_size() const { return static_cast<std::size_t>(B) * T * H * d; }
    std::size_t lse_size() const { return static_cast<std::size_t>(B) * H * T; }
};

// Increment got - start of the elements of part `which` (0 q, 1 k, 2 v) of a qkv-shaped buffer.
template <class T>
std::vector<T> part_increment(const std::vector<float>& got, const std::vector<float>& start,
                              const Shape& s, int which) {
    std::vector<T> inc;
    inc.reserve(s.out_size());
    const std::size_t row = static_cast<std::size_t>(s.H) * s.d;
    for (std::size_t bt = 0; bt < static_cast<std::size_t>(s.B) * s.T; ++bt)
        for (std::size_t e = 0; e < row; ++e) {
            const std::size_t i = (bt * 3 + static_cast<std::size_t>(which)) * row + e;
            inc.push_back(static_cast<T>(static_cast<double>(got[i]) - static_cast<double>(start[i])));
        }
    return inc;
}

void check_shape(const Shape& s, std::uint32_t seed) {
    CAPTURE(s.B);
    CAPTURE(s.T);
    CAPTURE(s.H);
    CAPTURE(s.d);
    const auto qkv = kt::random_floats(s.qkv_size(), seed, -1.5f, 1.5f);
    std::vector<float> want_out(s.out_size(), 7.0f), want_lse(s.lse_size(), 7.0f);
    cpu::attention_forward(want_out.data(), want_lse.data(), qkv.data(), s.B, s.T, s.H, s.d);

    auto d_qkv = gt::to_device(qkv);
    auto out = gt::nan_buffer(s.out_size()), lse = gt::nan_buffer(s.lse_size());
    cuda::attention_forward(out.get(), lse.get(), d_qkv.get(), s.B, s.T, s.H, s.d);
    const auto got_out = out.download(), got_lse = lse.download();
    kt::check_close(got_out, want_out, 1e-4, 1e-5, "attention out");
    kt::check_close(got_lse, want_lse, 1e-5, 1e-5, "attention lse");

    auto out2 = gt::nan_buffer(s.out_size());
    cuda::attention_forward(out2.get(), nullptr, d_qkv.get(), s.B, s.T, s.H, s.d);
    gt::check_bitwise(out2.download(), got_out, "attention out without lse");

    // Backward from the CPU's out and lse (the same inputs for both twins), into random
    // non-zero gradients.
    const auto dout = kt::random_floats(s.out_size(), seed + 1);
    const auto start = kt::random_floats(s.qkv_size(), seed + 2);
    auto want = start;
    cpu::attention_backward(want.data(), dout.data(), want_out.data(), want_lse.data(), qkv.data(),
                            s.B, s.T, s.H, s.d);
    REQUIRE(gt::differs(want, start));

    auto d_dout = gt::to_device(dout), d_out = gt::to_device(want_out),
         d_lse = gt::to_device(want_lse);
    auto g1 = gt::to_device(start), g2 = gt::to_device(start);
    cuda::attention_backward(g1.get(), d_dout.get(), d_out.get(), d_lse.get(), d_qkv.get(), s.B,
                             s.T, s.H, s.d);
    cuda::attention_backward(g2.get(), d_dout.get(), d_out.get(), d_lse.get(), d_qkv.get(), s.B,
                             s.T, s.H, s.d);
    const auto got = g1.download();
    const char* names[] = {"attention dq", "attention dk", "attention dv"};
    for (int which = 0; which < 3; ++which)
        gt::check_close_scaled(part_increment<float>(got, start, s, which),
                               part_increment<double>(want, start, s, which), 1e-4,
                               names[which], 5e-7);
    gt::check_bitwise(g2.download(), got, "attention dqkv, second run");
}

}  // namespace

TEST_CASE("gpu attention forward and backward match the CPU") {
    std::uint32_t seed = 1;
    for (int T : {1, 7, 64, 65, 200})
        for (int d : {8, 64})
            for (int H : {1, 3}) check_shape({2, T, H, d}, seed += 10);
}

TEST_CASE("gpu attention: head dimensions that are not a warp multiple, and the largest") {
    check_shape({1, 65, 2, 33}, 300);
    check_shape({1, 70, 1, 1}, 310);
    check_shape({2, 100, 2, 128}, 320);
}

TEST_CASE("gpu attention: empty shapes write nothing; d above the limit throws") {
    auto buf = gt::to_device(std::vector<float>(8, 7.0f));
    cuda::attention_forward(buf.get(), buf.get(), buf.get(), 2, 0, 1, 4);
    cuda::attention_forward(buf.get(), buf.get(), buf.get(), 0, 2, 1, 4);
    cuda::attention_backward(buf.get(), buf.get(), buf.get(), buf.get(), buf.get(), 1, 2, 0, 4);
    gt::check_equal(buf.download(), std::vector<float>(8, 7.0f), "untouched");
    CHECK_THROWS_AS(cuda::attention_forward(buf.get(), nullptr, buf.get(), 1, 1, 1,
                                            cuda::kAttentionMaxHeadDim + 1),
                    std::invalid_argument);
    CHECK_THROWS_AS(cuda::attention_backward(buf.get(), buf.get(), buf.get(), buf.get(), buf.get(),
                                             1, 1, 1, 0),
                    std::invalid_argument);
}
