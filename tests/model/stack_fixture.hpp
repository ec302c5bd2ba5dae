// One TransformerStack on its own, for the stack-level tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "backend/arena.hpp"
#include "backend/backend.hpp"
#include "model/parameters.hpp"
#include "model/transformer_stack.hpp"

namespace mt {

// One stack with its own parameters, view and arena, on `backend`; its parameters are a
// function of the seed and the names, so two stacks of one shape have equal ones.
struct StackUnderTest {
  mb::model::ParameterSet params;
  mb::model::ParameterView view;
  mb::backend::Arena arena;
  std::unique_ptr<mb::model::TransformerStack> stack;

  StackUnderTest(mb::backend::Backend& backend, const mb::model::StackShape& shape, int rows,
                 int length, bool bf16_activations, bool recompute = false) {
    stack = std::make_unique<mb::model::TransformerStack>(params, view, &backend, "", shape,
                                                          mb::model::ParamGroup::global);
    params.allocate();
    params.initialize(0.05f, 17);
    stack->reserve(arena, rows, length, bf16_activations, recompute);
    arena.commit(backend);
    view.set = &params;
    view.values = params.values().data();
    view.grads = params.grads().data();
  }
};

// n values uniform in [-1, 1).
inline std::vector<float> random_values(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

}  // namespace mt
