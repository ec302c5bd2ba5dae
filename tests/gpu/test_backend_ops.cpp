// The op table (tests/backend_ops/op_cases.hpp) on the CUDA backend against the CPU backend,
// row by row: every op of backend/op_list.inc, as the model calls it (through the Backend, which
// chooses the kernel), on the shapes that matter to its kernels, with the tolerance each output
// states (op_cases.cpp says why each is what it is). What is specific to one kernel (refusals,
// the short attention's shared-memory limits, the bf16 attention's rounding plan, the kernels'
// own arguments the Backend does not pass) stays in the per-kernel files beside this one.
//
// MB_OP=matmul_forward (an op's name) runs that op's rows alone.
#include "gpu_check.hpp"

#include "op_cases.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace bo = mb::backend_ops;
using mb::backend::Backend;
using mb::backend::Device;
using mb::backend::Precision;

namespace {

// got (CUDA) against want (CPU) by the output's tolerance (op_cases.hpp, Tolerance).
void compare(const std::vector<double>& got, const std::vector<double>& want,
             const bo::OutputSpec& spec) {
  const bo::Tolerance& t = spec.tolerance;
  switch (t.kind) {
    case bo::Tolerance::Kind::exact: gt::check_equal(got, want, spec.name); break;
    case bo::Tolerance::Kind::close: kt::check_close(got, want, t.rel, t.abs, spec.name); break;
    case bo::Tolerance::Kind::scaled: {
      double mx = 0.0;
      for (double w : want) mx = std::max(mx, std::fabs(w));
      kt::check_close(got, want, t.rel, t.rel * mx + t.abs, spec.name);
      break;
    }
    case bo::Tolerance::Kind::rows: {
      if (got.empty()) break;
      const std::vector<float> g(got.begin(), got.end()), w(want.begin(), want.end());
      gt::check_rows_scaled(g, w, static_cast<int>(got.size() / t.cols), static_cast<int>(t.cols),
                            t.rel, spec.name);
      break;
    }
  }
}

}  // namespace

TEST_CASE("gpu backend ops: every row of the op table, the CUDA backend against the CPU") {
  const char* only = std::getenv("MB_OP");
  std::map<std::pair<Device, Precision>, std::unique_ptr<Backend>> backends;
  for (Device dev : {Device::cpu, Device::cuda})
    for (Precision p : {Precision::fp32, Precision::bf16})
      backends[{dev, p}] = mb::backend::make_backend(dev, p);
  int rows = 0;
  for (const bo::OpCase& c : bo::op_cases()) {
    if (only && mb::backend::op_name(c.op) != only) continue;
    ++rows;
    const std::string row = bo::label(c);
    CAPTURE(row);
    try {
      const bo::RunResult want = c.run(*backends.at({Device::cpu, c.precision}));
      const bo::RunResult got = c.run(*backends.at({Device::cuda, c.precision}));
      const std::string notes = "CPU: " + want.note + "; CUDA: " + got.note;
      CAPTURE(notes);
      REQUIRE(want.outputs.size() == c.outputs.size());
      REQUIRE(got.outputs.size() == c.outputs.size());
      for (std::size_t i = 0; i < c.outputs.size(); ++i) {
        const bo::OutputSpec& spec = c.outputs[i];
        CAPTURE(spec.name);
        const auto& g = got.outputs[i];
        const auto& w = want.outputs[i];
        CHECK(w.size() == spec.size);
        CHECK(g.size() == spec.size);
        if (g.size() == spec.size && w.size() == spec.size) compare(g, w, spec);
      }
    } catch (const std::exception& e) {
      FAIL_CHECK(row << " threw: " << e.what());
    }
  }
  CHECK_MESSAGE(rows > 0, "MB_OP=" << (only ? only : "") << " names no op of the table");
}
