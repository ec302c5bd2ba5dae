// matmul_forward / matmul_backward: CUDA twin (cuBLASLt) against the CPU (oneDNN).
//
// Tolerances:
// - out, dinp, dweight: 1e-4 relative to the largest magnitude in the same output row
//   (|got - want| <= 1e-4 · (|want| + max |want| of the row)). Both sides are fp32 dot products
//   of the same terms summed in different orders (and blockings); with inputs in [-1, 1] and
//   K up to 512 the rounding difference is a few fp32 ulps of the row's magnitude (around
//   1e-6 relative), far inside 1e-4. The bound is not looser because TF32 math (10-bit
//   mantissa, about 5e-4 relative per product) would reach it on the larger shapes: the
//   CUDA side must stay true fp32 (CUBLAS_COMPUTE_32F).
// - dbias: 1e-5 relative to the largest entry (gt::check_close_scaled): column sums of M
//   values, added in one running sum on the CPU and as per-task partials on the GPU.
// - K = 0 (out = bias) and skipped destinations: exact.
// - Two runs, forward and backward: bit-identical.
// The checks themselves are shared with the bf16 pair: matmul_parity.hpp.
#include "matmul_parity.hpp"

#include "cpu/matmul.hpp"
#include "cuda/matmul.cuh"

namespace cpu = mb::kernels::cpu;
namespace cuda = mb::kernels::cuda;

namespace {

const gt::MatmulPair kFp32{"matmul", 1e-4, cpu::matmul_forward, cuda::matmul_forward,
                           cpu::matmul_backward, cuda::matmul_backward};

const gt::MatmulCase kCases[] = {
    {1, 1, 1},
    {37, 129, 65},   // odd everywhere
    {64, 256, 128},  // aligned
    {300, 512, 259}, // several dbias tasks; N the byte vocabulary + 3
    {3, 7, 1},       // a single output column
    {1, 64, 33},     // a single row
};

}  // namespace

TEST_CASE("gpu matmul forward and backward match the CPU, with and without bias") {
    std::uint32_t seed = 100;
    for (const gt::MatmulCase& c : kCases)
        for (bool with_bias : {true, false})
            gt::check_matmul_case(kFp32, c, with_bias, 0, 0, seed += 10);
}

TEST_CASE("gpu matmul: operands aligned to 4 bytes only") {
    std::uint32_t seed = 500;
    for (const gt::MatmulCase& c : kCases) gt::check_matmul_case(kFp32, c, true, 1, 1, seed += 10);
}

TEST_CASE("gpu matmul: empty contraction K = 0 gives out = bias and no weight gradients") {
    gt::check_matmul_case(kFp32, {5, 0, 3}, true, 0, 0, 900);
    gt::check_matmul_case(kFp32, {5, 0, 3}, false, 0, 0, 910);
}

TEST_CASE("gpu matmul: M = 0 or N = 0 writes nothing; negative sizes throw") {
    gt::check_matmul_empty_and_negative(kFp32);
}
