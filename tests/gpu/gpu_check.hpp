// Helpers for the GPU parity tests: the CPU tests' random inputs and tolerant comparison
// (tests/kernels/check.hpp), device buffers, and the exact comparisons that CPU/GPU pairs
// computing the same fp32 operations in the same order must pass.
//
// Why each comparison can fail: GPU outputs start as NaN (an element a kernel forgets to write
// fails every comparison) and accumulated gradients start as random non-zero values (a kernel
// that overwrites instead of adding fails), while the CPU twin produces a reference that
// differs from both.
#pragma once

#include "../kernels/check.hpp"

#include "cuda/device_buffer.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace gt {

using mb::kernels::cuda::DeviceBuffer;

template <class T>
DeviceBuffer<T> to_device(const std::vector<T>& host) {
    return DeviceBuffer<T>(host);
}

// A device output buffer whose every element is NaN until a kernel writes it.
inline DeviceBuffer<float> nan_buffer(std::size_t n) {
    return DeviceBuffer<float>(std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()));
}

// got[i] == want[i] for every i (so -0 equals +0, and NaN never matches). Reports the count
// and the first mismatch.
template <class T>
void check_equal(const std::vector<T>& got, const std::vector<T>& want, const std::string& what) {
    REQUIRE_MESSAGE(got.size() == want.size(), what << ": size mismatch");
    std::size_t bad = 0, first = 0;
    for (std::size_t i = 0; i < got.size(); ++i)
        if (!(got[i] == want[i]) && bad++ == 0) first = i;
    CHECK_MESSAGE(bad == 0, what << ": " << bad << " of " << got.size()
                                 << " elements differ; first at " << first << ": got "
                                 << (got.empty() ? T{} : got[first]) << ", want "
                                 << (want.empty() ? T{} : want[first]));
}

// Bit-identical buffers (for determinism: two runs of the same op on the same GPU).
template <class T>
void check_bitwise(const std::vector<T>& a, const std::vector<T>& b, const std::string& what) {
    REQUIRE_MESSAGE(a.size() == b.size(), what << ": size mismatch");
    CHECK_MESSAGE(std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0,
                  what << ": two runs differ in their bits");
}

// For sums over many rows (bias and weight gradients, products): both sides are fp32 sums
// of the same terms in different orders, whose rounding error grows with the magnitude of the
// largest sums, not with each entry's own (a column that cancels to near 0 keeps the absolute
// error of the others). So: |got - want| <= rel · (|want| + max |want|) + extra_abs.
template <class W>
void check_close_scaled(const std::vector<float>& got, const std::vector<W>& want, double rel,
                        const std::string& what, double extra_abs = 0.0) {
    double mx = 0.0;
    for (const auto& w : want) mx = std::max(mx, std::fabs(static_cast<double>(w)));
    kt::check_close(got, want, rel, rel * mx + extra_abs, what);
}

// Guards against a vacuous comparison: the reference must have changed from the input.
inline bool differs(const std::vector<float>& a, const std::vector<float>& b) {
    return a != b;
}

}  // namespace gt
