// A micro-batch run a part at a time (Model::forward's first_window), as the ranks of a job
// share it: each window draws the dropout masks the whole micro-batch draws at its place, so
// the parts' losses add up to the whole's and their gradients to its gradients (to fp32
// rounding: the weight gradients sum over all rows of a product, in another order).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/backend.hpp"
#include "model_fixtures.hpp"

using namespace mb::model;

namespace {

struct Run {
  double loss = 0.0;
  std::vector<float> grads;
};

// The 3 windows of `ids` in parts of `sizes` windows (first_window advancing), dropout seed 99.
Run run_in_parts(const ModelConfig& c, const std::vector<std::int32_t>& ids,
                 const std::vector<int>& sizes, bool shift_masks) {
  auto m = make_model(c, 3, mb::backend::make_backend(mb::backend::Device::cpu));
  m->parameters().initialize(0.3f, 11);
  m->upload_parameters();
  m->zero_gradients();
  Run r;
  int first = 0;
  for (int n : sizes) {
    const std::int32_t* part = ids.data() + static_cast<std::size_t>(first) * c.context;
    const LossSum counted = m->forward(part, n, true, 99, shift_masks ? first : 0);
    r.loss += m->backward(1.0f / 1000.0f).loss;
    static_cast<void>(counted);
    first += n;
  }
  m->download_gradients();
  r.grads = m->parameters().grads();
  return r;
}

double worst_relative(const std::vector<float>& a, const std::vector<float>& b) {
  double scale = 1e-30, diff = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    scale = std::max(scale, static_cast<double>(std::fabs(a[i])));
    diff = std::max(diff, static_cast<double>(std::fabs(a[i] - b[i])));
  }
  return diff / scale;
}

}  // namespace

TEST_CASE(
    "a micro-batch run in parts at their windows is the whole micro-batch, dropout included") {
  for (const ModelConfig& c :
       {mt::tiny_megabyte(Activation::gelu, 0.3f), mt::tiny_transformer(0.3f)}) {
    CAPTURE(model_kind_name(c.kind));
    const auto ids = mt::random_ids(3, c.context, 5);
    const Run whole = run_in_parts(c, ids, {3}, true);
    for (const std::vector<int>& sizes :
         {std::vector<int>{1, 2}, std::vector<int>{2, 1}, std::vector<int>{1, 1, 1}}) {
      const Run parts = run_in_parts(c, ids, sizes, true);
      CHECK(parts.loss == doctest::Approx(whole.loss).epsilon(1e-6));
      CHECK(worst_relative(whole.grads, parts.grads) < 1e-5);
    }
    // Without first_window every part draws the masks of the micro-batch's first windows:
    // another computation altogether, which the check above would see.
    const Run unshifted = run_in_parts(c, ids, {1, 1, 1}, false);
    CHECK(worst_relative(whole.grads, unshifted.grads) > 1e-3);
  }
}
