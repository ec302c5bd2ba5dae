// The weight gradient of a linear layer summed over the rows in order, so that it can be
// computed a chunk of rows at a time with the same bits.
//
// A GEMM library sums a product's contraction in blocks of its choosing (and, for a long one,
// across threads), and adds the result to the destination at the end: the weight gradient of
// rows 0..M then differs in its last bits from that of rows 0..M/2 followed by rows M/2..M.
// Training the local model a chunk of patches at a time (train.local_chunk) must give the
// gradients of training it whole, bit for bit, so every weight gradient is defined here as one
// fixed sequence per element: start from the destination's value and add the rows' products
// one row after the other. Splitting the rows into calls, in order, repeats that sequence.
#pragma once

#include "cpu/simd.hpp"

namespace mb::kernels::cpu {

// dweight[N,K] += dout[M,N]ᵀ · inp[M,K], each element as
//   for m = 0 .. M-1:  dweight[n,k] = dweight[n,k] + dout[m,n] · inp[m,k]
// (a fused multiply-add where the machine has one). The result does not depend on the number
// of threads, and calls on consecutive row ranges equal one call on their union. `variant`:
// the AVX-512 code where the machine has it, or the AVX2 code everywhere; the same bits
// (cpu/simd.hpp).
void weight_gradient_in_row_order(float* dweight, const float* dout, const float* inp, int M, int K,
                                  int N, IsaVariant variant = IsaVariant::best);

}  // namespace mb::kernels::cpu
