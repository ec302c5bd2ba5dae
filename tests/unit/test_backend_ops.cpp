// The op table (tests/backend_ops/op_cases.hpp) without a GPU: it names every op of the list,
// and every row runs on the CPU backend, so the table the GPU suite runs is compiled and
// exercised in CI. An op added to backend/op_list.inc without a row fails here.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <map>
#include <set>
#include <string>

#include "backend/backend.hpp"
#include "op_cases.hpp"

using mb::backend::Device;
using mb::backend::kOpCount;
using mb::backend::Op;
using mb::backend::Precision;
using mb::backend_ops::label;
using mb::backend_ops::op_cases;
using mb::backend_ops::Tolerance;

TEST_CASE("op names: one per op of the list, distinct") {
  std::set<std::string> names;
  for (int i = 0; i < kOpCount; ++i) {
    const auto name = mb::backend::op_name(static_cast<Op>(i));
    CHECK(name != "?");
    names.emplace(name);
  }
  CHECK(names.size() == static_cast<std::size_t>(kOpCount));
  CHECK(mb::backend::op_name(Op::matmul_forward) == "matmul_forward");
}

TEST_CASE("the op table has a row for every op, and its labels are distinct") {
  std::array<int, kOpCount> rows{};
  std::set<std::string> labels;
  for (const auto& c : op_cases()) {
    ++rows[static_cast<std::size_t>(c.op)];
    CHECK_MESSAGE(labels.insert(label(c)).second, "two rows are labelled " << label(c));
  }
  for (int i = 0; i < kOpCount; ++i)
    CHECK_MESSAGE(rows[static_cast<std::size_t>(i)] > 0,
                  "no row in tests/backend_ops/op_cases.cpp for "
                      << mb::backend::op_name(static_cast<Op>(i)));
}

TEST_CASE("every row of the op table runs on the CPU backend: finite outputs of their sizes") {
  std::map<Precision, std::unique_ptr<mb::backend::Backend>> cpu;
  for (Precision p : {Precision::fp32, Precision::bf16})
    cpu[p] = mb::backend::make_backend(Device::cpu, p);
  for (const auto& c : op_cases()) {
    CAPTURE(label(c));
    const auto r = c.run(*cpu.at(c.precision));
    REQUIRE(r.outputs.size() == c.outputs.size());
    for (std::size_t i = 0; i < c.outputs.size(); ++i) {
      const auto& spec = c.outputs[i];
      const auto& got = r.outputs[i];
      CAPTURE(spec.name);
      CHECK(got.size() == spec.size);
      if (spec.tolerance.kind == Tolerance::Kind::rows)
        CHECK((spec.tolerance.cols > 0 ? got.size() % spec.tolerance.cols == 0 : got.empty()));
      std::size_t bad = 0, nonzero = 0;
      for (double x : got) {
        if (!std::isfinite(x)) ++bad;
        if (x != 0.0) ++nonzero;
      }
      CHECK_MESSAGE(bad == 0, bad << " of " << got.size() << " outputs are not finite");
      if (spec.zero) CHECK_MESSAGE(nonzero == 0, nonzero << " of " << got.size() << " are not 0");
    }
  }
}
