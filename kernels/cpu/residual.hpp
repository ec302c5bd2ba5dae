// Residual connection: elementwise sum of two streams, forward and backward.
#pragma once

#include <cstddef>

namespace mb::kernels::cpu {

// out[i] = a[i] + b[i] for i < n. out is overwritten and may equal a or b (in place).
void residual_forward(float* out, const float* a, const float* b, std::size_t n);

// da[i] += dout[i], db[i] += dout[i]. Either may be null to skip it.
void residual_backward(float* da, float* db, const float* dout, std::size_t n);

}  // namespace mb::kernels::cpu
