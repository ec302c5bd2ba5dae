// matmul_forward / matmul_backward (fp32): what the CUDA pair must refuse or leave alone. Its
// parity with the CPU (oneDNN against cuBLASLt, true fp32: CUBLAS_COMPUTE_32F) is in the op
// table (test_backend_ops.cpp).
#include "matmul_parity.hpp"

#include "cuda/matmul.cuh"

namespace cuda = mb::kernels::cuda;

namespace {

const gt::MatmulPair kFp32{"matmul", cuda::matmul_forward, cuda::matmul_backward};

}  // namespace

TEST_CASE("gpu matmul: M = 0 or N = 0 writes nothing; negative sizes throw") {
  gt::check_matmul_empty_and_negative(kFp32);
}
