// Embedding lookup on the GPU: the twin of cpu/embedding.hpp (fp32 table, int32 ids, all
// device pointers, default stream; see common.cuh). Plain C++: no CUDA types.
#pragma once

#include <cstdint>

namespace mb::kernels::cuda {

// out[n, :] = table[ids[n], :] for n < N. out is overwritten. Every id must lie in [0, V);
// otherwise std::out_of_range is thrown before anything is written (checking the ids on the
// device costs one synchronisation per call).
void embedding_forward(float* out, const std::int32_t* ids, const float* table, int N, int C,
                       int V);

// dtable[ids[n], :] += dout[n, :]. Rows that share an id are added in increasing n, exactly as
// the CPU twin does, so the result is deterministic and equals the CPU's bit for bit. Ids are
// checked as in the forward.
void embedding_backward(float* dtable, const float* dout, const std::int32_t* ids, int N, int C,
                        int V);

}  // namespace mb::kernels::cuda
