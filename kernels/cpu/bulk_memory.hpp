// Zeroing and copying large host buffers on all threads.
//
// The CPU backend's zero() and copy() were one memset or memcpy on the calling thread: a
// training step of configs/bench-cpu.yaml zeroes about 220 MB of gradient buffers before the
// products and attention add into them (2.4% of the step in perf, all on one thread, while the
// other waited). Split between the threads, each writes half, in parallel.
#pragma once

#include <cstddef>

namespace mb::kernels::cpu {

// dst[0 .. bytes) = 0.
void zero_bytes(void* dst, std::size_t bytes);

// dst[0 .. bytes) = src[0 .. bytes); the two must not overlap.
void copy_bytes(void* dst, const void* src, std::size_t bytes);

}  // namespace mb::kernels::cpu
