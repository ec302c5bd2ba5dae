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

// A host vector of n NaNs (an output a kernel must overwrite).
inline std::vector<float> nans(std::size_t n) {
  return std::vector<float>(n, std::numeric_limits<float>::quiet_NaN());
}

// A device copy of a host vector placed `off` floats into its buffer, so that a test can hand
// the kernels pointers aligned to 4 bytes only (as operands inside a larger buffer are).
struct OffsetBuffer {
  DeviceBuffer<float> buf;
  std::size_t off;
  OffsetBuffer(const std::vector<float>& host, std::size_t offset) : off(offset) {
    std::vector<float> padded(host.size() + off, -3.0f);
    std::copy(host.begin(), host.end(), padded.begin() + static_cast<std::ptrdiff_t>(off));
    buf = DeviceBuffer<float>(padded);
  }
  float* p() const { return buf.get() + off; }
  std::vector<float> download() const {
    const auto all = buf.download();
    return std::vector<float>(all.begin() + static_cast<std::ptrdiff_t>(off), all.end());
  }
};

// For matrix products, row by row: violations of |got - want| <= rel · (|want| + max |want| of
// the row) in rows × cols buffers (NaN always violates); `first` gets the first one's index.
inline std::size_t count_row_scaled_bad(const std::vector<float>& got,
                                        const std::vector<float>& want, int rows, int cols,
                                        double rel, std::size_t* first = nullptr) {
  std::size_t bad = 0;
  for (int r = 0; r < rows; ++r) {
    double mx = 0.0;
    for (int c = 0; c < cols; ++c)
      mx = std::max(mx,
                    std::fabs(static_cast<double>(want[static_cast<std::size_t>(r) * cols + c])));
    for (int c = 0; c < cols; ++c) {
      const std::size_t i = static_cast<std::size_t>(r) * cols + c;
      const double err = std::fabs(static_cast<double>(got[i]) - static_cast<double>(want[i]));
      if (!(err <= rel * (std::fabs(static_cast<double>(want[i])) + mx))) {
        if (bad == 0 && first) *first = i;
        ++bad;
      }
    }
  }
  return bad;
}

inline void check_rows_scaled(const std::vector<float>& got, const std::vector<float>& want,
                              int rows, int cols, double rel, const std::string& what) {
  REQUIRE(got.size() == want.size());
  std::size_t first = 0;
  const std::size_t bad = count_row_scaled_bad(got, want, rows, cols, rel, &first);
  CHECK_MESSAGE(bad == 0, what << ": " << bad << " of " << got.size()
                               << " elements out of tolerance; first at " << first << ": got "
                               << (bad ? got[first] : 0.0f) << ", want "
                               << (bad ? want[first] : 0.0f));
}

// Guards against a vacuous comparison: the reference must have changed from the input.
inline bool differs(const std::vector<float>& a, const std::vector<float>& b) { return a != b; }

}  // namespace gt
