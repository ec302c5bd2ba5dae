// bf16 activations: in bf16 precision a TransformerStack saves four activations per layer as
// bf16 copies only (TransformerStack::reserve), and its arena shrinks by (4·C + 2·hidden) · 2
// bytes per row and layer, less one fp32 buffer of 3·C per row:
// - the input of FC2 (the activation's output), which the product rounds to bf16 anyway (the
//   layer norms' outputs, the other products' inputs, are recomputed in either precision);
// - q, k and v, which the forward's attention then reads rounded as well;
// - the attention's output and the pre-activation, read rounded by their backward passes
//   (tests/kernels/test_activation.cpp checks the activation's bit for bit).
// Against a stack that keeps them all in fp32 the results differ by that rounding only: a
// small fraction of their size. The GPU suite checks the CUDA stack against this CPU one.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "stack_fixture.hpp"

using mb::backend::Arena;
using mb::model::Activation;
using mb::model::StackShape;
using mt::random_values;
using mt::StackUnderTest;

namespace {

// A result of the bf16-saving stack against the fp32-saving one: not the same bits (the
// rounding of q, k and v shows everywhere downstream), yet within `rel` of the largest value.
// bf16 keeps 8 significant bits, so each rounded value moves by at most 2^-9 (0.2%) of itself;
// through the sums of a layer those differences partly cancel, and under 0.1% is seen with
// GELU: `rel` is 0.5% there. With ReLU a pre-activation that the upstream rounding moves
// across 0 turns a whole term of the gradient on or off, and tiny widths have few terms to
// dilute it: up to 2% is seen, and `rel` is 5%.
void check_rounding_only(const std::vector<float>& got, const std::vector<float>& want, double rel,
                         const std::string& what) {
  CAPTURE(what);
  REQUIRE(got.size() == want.size());
  double scale = 0.0, worst = 0.0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    scale = std::max(scale, std::fabs(static_cast<double>(want[i])));
    worst = std::max(worst, std::fabs(static_cast<double>(got[i]) - want[i]));
  }
  CHECK(scale > 0.0);
  CHECK(worst > 0.0);
  CHECK(worst <= rel * scale);
}

void check_rounded(const StackShape& shape, int sequences, int length, bool training) {
  const double rel = shape.activation == Activation::gelu ? 0.005 : 0.05;
  CAPTURE(shape.width);
  CAPTURE(shape.hidden);
  CAPTURE(training);
  auto backend = mb::backend::make_backend(mb::backend::Device::cpu, mb::backend::Precision::bf16);
  const int rows = sequences * length;
  StackUnderTest fp32(*backend, shape, rows, length, false),
      bf16(*backend, shape, rows, length, true);
  REQUIRE(fp32.params.values() == bf16.params.values());

  const std::size_t n = static_cast<std::size_t>(rows) * shape.width;
  const auto in = random_values(n, 1), dout = random_values(n, 2);
  std::vector<float> out_a(n), out_b(n), din_a(n), din_b(n);
  fp32.stack->forward(out_a.data(), in.data(), sequences, length, training, 99);
  bf16.stack->forward(out_b.data(), in.data(), sequences, length, training, 99);
  check_rounding_only(out_b, out_a, rel, "out");
  fp32.stack->backward(din_a.data(), dout.data());
  bf16.stack->backward(din_b.data(), dout.data());
  check_rounding_only(din_b, din_a, rel, "din");
  check_rounding_only(bf16.params.grads(), fp32.params.grads(), rel, "parameter gradients");

  // The bf16 arena is smaller by the four saved activations' fp32 bytes less their bf16 bytes,
  // (4·C + 2·hidden) · 2 per row and layer (with ReLU three: no pre-activation is saved, and
  // (4·C + hidden) · 2), less the one fp32 buffer of 3·C per row the backward pass widens q, k,
  // v into, up to the arena's 256-byte rounding of each slice.
  const std::size_t C = shape.width, H = shape.hidden;
  const bool relu = shape.activation == Activation::relu;
  const std::size_t hidden_saved = relu ? H : 2 * H;
  const std::size_t saved = shape.layers * rows * (4 * C + hidden_saved) * 2 - rows * 3 * C * 4;
  const std::size_t slack =
      (static_cast<std::size_t>(shape.layers) * (relu ? 3 : 4) * 2 + 1) * Arena::kAlignment;
  CHECK(fp32.arena.bytes() - bf16.arena.bytes() + slack >= saved);
  CHECK(fp32.arena.bytes() - bf16.arena.bytes() <= saved + slack);
}

}  // namespace

TEST_CASE("bf16 activations: results that differ from fp32-saved ones by the rounding only") {
  // Widths that are multiples of 8 (the GPU reads such copies in place) and widths that are not.
  const StackShape gelu{2, 32, 4, 128, Activation::gelu, 0.0f, 1e-5f};
  const StackShape relu_dropout{2, 20, 4, 44, Activation::relu, 0.1f, 1e-5f};
  check_rounded(gelu, 4, 16, false);
  check_rounded(gelu, 4, 16, true);
  check_rounded(relu_dropout, 3, 7, true);
  check_rounded(relu_dropout, 3, 7, false);
}

TEST_CASE("bf16 activations: the saving is exact where no slice needs padding") {
  // 64 rows of width 32 and hidden 128: every bf16 slice is a multiple of 256 bytes.
  const StackShape shape{3, 32, 4, 128, Activation::gelu, 0.0f, 1e-5f};
  auto backend = mb::backend::make_backend(mb::backend::Device::cpu, mb::backend::Precision::bf16);
  StackUnderTest fp32(*backend, shape, 64, 16, false), bf16(*backend, shape, 64, 16, true);
  CHECK(fp32.arena.bytes() - bf16.arena.bytes() ==
        std::size_t{3} * 64 * (4 * 32 + 2 * 128) * 2 - std::size_t{64} * 3 * 32 * 4);
}

TEST_CASE("bf16 activations: refused on a backend in fp32 precision") {
  const StackShape shape{1, 8, 2, 32, Activation::gelu, 0.0f, 1e-5f};
  auto backend = mb::backend::make_backend(mb::backend::Device::cpu, mb::backend::Precision::fp32);
  CHECK_THROWS_AS(StackUnderTest(*backend, shape, 8, 8, true), std::logic_error);
  StackUnderTest fine(*backend, shape, 8, 8, false);
  CHECK(fine.arena.bytes() > 0);
}
