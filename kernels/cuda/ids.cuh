// Validation of int32 index arrays that live on the device (embedding ids, cross-entropy
// targets), so that the CUDA twins reject bad input exactly as the CPU twins do: with
// std::out_of_range, before anything is written.
//
// Internal to the .cu files.
#pragma once

#include <cstdint>

namespace mb::kernels::cuda::detail {

// The first n < N whose ids[n] lies outside [lo, hi), or -1 when all are inside. ids is a
// device pointer. Synchronises with the default stream (the answer is needed on the host).
int first_outside(const std::int32_t* ids, int N, std::int32_t lo, std::int32_t hi);

// Throws std::out_of_range("<what>: <noun> <ids[n]> at row <n> <rule>") when some id lies
// outside [lo, hi): the CPU twins' messages, naming the first offending row.
void check_ids_on_device(const std::int32_t* ids, int N, std::int32_t lo, std::int32_t hi,
                         const char* what, const char* noun, const char* rule);

}  // namespace mb::kernels::cuda::detail
