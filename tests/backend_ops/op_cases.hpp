// The op table: every op of the Backend interface (backend/op_list.inc) on the shapes that
// matter to its kernels, written against the Backend interface only, as ggml's
// tests/test-backend-ops.cpp. The GPU suite (tests/gpu/test_backend_ops.cpp) runs each row on
// the CPU backend and on the CUDA backend and compares the outputs with the row's tolerances;
// the unit suite (tests/unit/test_backend_ops.cpp) checks without a GPU that every op has a row
// and that every row runs on the CPU. Adding an op: its two kernel files, its line in
// op_list.inc, its CPU test (tests/kernels/), and its rows here.
//
// A row fills its inputs from fixed seeds (the same values on every backend), starts the
// outputs it accumulates into from random non-zero values (a kernel that overwrites instead of
// adding fails) and those it writes from NaN (an element a kernel forgets to write fails).
// Where a row checks a property of one device alone (two runs give the same bits, a
// destination computed alone equals the full call), it returns the difference, which must be
// exactly 0 on both backends.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "backend/backend.hpp"

namespace mb::backend_ops {

// How an output of the device under test is compared with the CPU's (want), element by element
// (NaN never passes):
//   exact:  got == want
//   close:  |got - want| <= rel · |want| + abs
//   scaled: |got - want| <= rel · (|want| + max |want|) + abs, the max over the whole output
//           (sums whose rounding grows with the largest sums, not with each entry's own)
//   rows:   |got - want| <= rel · (|want| + max |want| of its row of `cols`) (matrix products)
struct Tolerance {
  enum class Kind { exact, close, scaled, rows };
  Kind kind = Kind::exact;
  double rel = 0.0, abs = 0.0;
  std::size_t cols = 0;

  static Tolerance exact() { return {}; }
  static Tolerance close(double rel, double abs) { return {Kind::close, rel, abs, 0}; }
  static Tolerance scaled(double rel, double abs = 0.0) { return {Kind::scaled, rel, abs, 0}; }
  static Tolerance rows(double rel, std::size_t cols) { return {Kind::rows, rel, 0.0, cols}; }
};

struct OutputSpec {
  std::string name;
  std::size_t size;
  Tolerance tolerance;
  bool zero = false;  // a difference of two runs on one device: exactly 0 on every backend
};

// What a row's run returns: one vector per OutputSpec, in order (fp32 values, bf16 patterns,
// counts and double sums alike: each exact in a double), and a note for the log (which
// attention kernel the backend chose).
struct RunResult {
  std::vector<std::vector<double>> outputs;
  std::string note;
};

struct OpCase {
  backend::Op op;
  std::string shape;             // "N=13 C=257", unique among the op's rows of one precision
  backend::Precision precision;  // the backend's: make_backend(device, precision)
  std::vector<OutputSpec> outputs;
  std::function<RunResult(backend::Backend&)> run;
};

// Every row, built once.
const std::vector<OpCase>& op_cases();

// "matmul_forward [M=37 K=129 N=65, bias] bf16": for messages.
std::string label(const OpCase& c);

}  // namespace mb::backend_ops
