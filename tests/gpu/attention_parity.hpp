// The parity check of a CUDA causal attention kernel, called directly, against its CPU twin,
// for the shapes the Backend does not give it (the op table checks the others): shared by
// test_attention.cpp (tiled) and test_attention_bf16.cpp (tiled bf16). Forward out and lse,
// lse = null, and the backward accumulated onto random non-zero gradients, run twice. Each test
// file states its tolerances and why.
#pragma once

#include "gpu_check.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace gt {

struct AttentionShape {
  int B, T, H, d;
  std::size_t qkv_size() const { return static_cast<std::size_t>(B) * T * 3 * H * d; }
  std::size_t out_size() const { return static_cast<std::size_t>(B) * T * H * d; }
  std::size_t lse_size() const { return static_cast<std::size_t>(B) * H * T; }
};

// One attention on one device: the signatures every attention twin has.
struct AttentionOps {
  void (*forward)(float* out, float* lse, const float* qkv, int B, int T, int H, int d);
  void (*backward)(float* dqkv, const float* dout, const float* out, const float* lse,
                   const float* qkv, int B, int T, int H, int d, bool accumulate_dqkv);
};

struct AttentionTolerances {
  double out_rel, out_abs;    // kt::check_close of out
  double lse_rel, lse_abs;    // kt::check_close of lse
  double grad_rel, grad_abs;  // of each part's increment (q, k, v): check_gradient_parts
};

// Increment got - start of the elements of part `which` (0 q, 1 k, 2 v) of a qkv-shaped buffer.
template <class T>
std::vector<T> part_increment(const std::vector<float>& got, const std::vector<float>& start,
                              const AttentionShape& s, int which) {
  std::vector<T> inc;
  inc.reserve(s.out_size());
  const std::size_t row = static_cast<std::size_t>(s.H) * s.d;
  for (std::size_t bt = 0; bt < static_cast<std::size_t>(s.B) * s.T; ++bt)
    for (std::size_t e = 0; e < row; ++e) {
      const std::size_t i = (bt * 3 + static_cast<std::size_t>(which)) * row + e;
      inc.push_back(static_cast<T>(static_cast<double>(got[i]) - static_cast<double>(start[i])));
    }
  return inc;
}

// Each part (0 q, 1 k, 2 v) of the increments got - start against want - start:
// |error| <= rel · (|want| + the largest |want| of the whole increment) + abs. The scale is the
// whole gradient's, not the part's: dq and dk sum dS = p (dout · v - D), whose rounding is that
// of dout · v, and which cancels to nothing at T = 1 (a lone key has dS = 0, so dq = dk = 0 up
// to that rounding, while dv = dout).
inline void check_gradient_parts(const std::vector<float>& got, const std::vector<float>& want,
                                 const std::vector<float>& start, const AttentionShape& s,
                                 double rel, double abs, const std::string& name) {
  double mx = 0.0;
  for (std::size_t i = 0; i < want.size(); ++i)
    mx = std::max(mx, std::fabs(static_cast<double>(want[i]) - static_cast<double>(start[i])));
  const char* parts[] = {" dq", " dk", " dv"};
  for (int which = 0; which < 3; ++which)
    kt::check_close(part_increment<float>(got, start, s, which),
                    part_increment<double>(want, start, s, which), rel, rel * mx + abs,
                    name + parts[which]);
}

// `gpu` against `cpu` on random inputs in [-1.5, 1.5] of shape s; `name` prefixes the messages.
inline void check_attention_parity(const AttentionOps& cpu, const AttentionOps& gpu,
                                   const AttentionTolerances& tol, const AttentionShape& s,
                                   std::uint32_t seed, const std::string& name) {
  CAPTURE(s.B);
  CAPTURE(s.T);
  CAPTURE(s.H);
  CAPTURE(s.d);
  const auto qkv = kt::random_floats(s.qkv_size(), seed, -1.5f, 1.5f);
  std::vector<float> want_out(s.out_size(), 7.0f), want_lse(s.lse_size(), 7.0f);
  cpu.forward(want_out.data(), want_lse.data(), qkv.data(), s.B, s.T, s.H, s.d);

  auto d_qkv = to_device(qkv);
  auto out = nan_buffer(s.out_size()), lse = nan_buffer(s.lse_size());
  gpu.forward(out.get(), lse.get(), d_qkv.get(), s.B, s.T, s.H, s.d);
  const auto got_out = out.download(), got_lse = lse.download();
  kt::check_close(got_out, want_out, tol.out_rel, tol.out_abs, name + " out");
  kt::check_close(got_lse, want_lse, tol.lse_rel, tol.lse_abs, name + " lse");

  auto out2 = nan_buffer(s.out_size());
  gpu.forward(out2.get(), nullptr, d_qkv.get(), s.B, s.T, s.H, s.d);
  check_bitwise(out2.download(), got_out, name + " out without lse");

  // Backward from the CPU's out and lse (the same inputs for both twins), into random
  // non-zero gradients.
  const auto dout = kt::random_floats(s.out_size(), seed + 1);
  const auto start = kt::random_floats(s.qkv_size(), seed + 2);
  auto want = start;
  cpu.backward(want.data(), dout.data(), want_out.data(), want_lse.data(), qkv.data(), s.B, s.T,
               s.H, s.d, true);
  REQUIRE(differs(want, start));

  auto d_dout = to_device(dout), d_out = to_device(want_out), d_lse = to_device(want_lse);
  auto g1 = to_device(start), g2 = to_device(start);
  gpu.backward(g1.get(), d_dout.get(), d_out.get(), d_lse.get(), d_qkv.get(), s.B, s.T, s.H, s.d,
               true);
  gpu.backward(g2.get(), d_dout.get(), d_out.get(), d_lse.get(), d_qkv.get(), s.B, s.T, s.H, s.d,
               true);
  const auto got = g1.download();
  check_gradient_parts(got, want, start, s, tol.grad_rel, tol.grad_abs, name);
  check_bitwise(g2.download(), got, name + " dqkv, second run");

  // Written over (a model's backward pass): dqkv is not read, and gets the bits of adding to
  // zeros.
  auto over = nan_buffer(s.qkv_size()), onto_zeros = to_device(std::vector<float>(s.qkv_size()));
  gpu.backward(over.get(), d_dout.get(), d_out.get(), d_lse.get(), d_qkv.get(), s.B, s.T, s.H, s.d,
               false);
  gpu.backward(onto_zeros.get(), d_dout.get(), d_out.get(), d_lse.get(), d_qkv.get(), s.B, s.T, s.H,
               s.d, true);
  check_bitwise(over.download(), onto_zeros.download(), name + " dqkv written over NaN");
}

}  // namespace gt
