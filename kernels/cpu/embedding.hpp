// Embedding lookup (a table of V rows of C values indexed by int32 ids), forward and backward.
#pragma once

#include <cstdint>

namespace mb::kernels::cpu {

// out[n, :] = table[ids[n], :] for n < N. out is overwritten. Every id must lie in [0, V);
// otherwise std::out_of_range is thrown before anything is written.
void embedding_forward(float* out, const std::int32_t* ids, const float* table, int N, int C,
                       int V);

// dtable[ids[n], :] += dout[n, :]. Rows that share an id are added in increasing n, whatever
// the number of threads, so the result is deterministic. Ids are checked as in the forward.
void embedding_backward(float* dtable, const float* dout, const std::int32_t* ids, int N, int C,
                        int V);

}  // namespace mb::kernels::cpu
