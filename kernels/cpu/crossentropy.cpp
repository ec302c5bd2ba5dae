// Cross-entropy through the tied head: per chunk of rows, one oneDNN product for the logits,
// a row-parallel softmax pass, and (backward) matmul_backward's two products, which accumulate
// dh and dE (dE adding the rows in order, so the chunks here, or a caller's, do not change it).
#include "cpu/crossentropy.hpp"

#include "cpu/matmul.hpp"
#include "cpu/parallel.hpp"
#include "cpu/simd.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace mb::kernels::cpu {
namespace {

void check(const std::int32_t* targets, int N, int D, int V, const char* what) {
  if (N < 0 || D <= 0 || V <= 0)
    throw std::invalid_argument(std::string(what) + ": need N >= 0, D > 0 and V > 0");
  for (int n = 0; n < N; ++n)
    if (targets[n] >= V)
      throw std::out_of_range(std::string(what) + ": target " + std::to_string(targets[n]) +
                              " at row " + std::to_string(n) +
                              " is not below V = " + std::to_string(V));
}

int chunk_rows(int V) { return std::max(1, kCrossEntropyChunkFloats / V); }

// logsumexp of one row of logits.
MB_CPU_CLONES
float row_lse(const float* __restrict z, int V) {
  float mx = z[0];
#pragma omp simd reduction(max : mx)
  for (int v = 0; v < V; ++v) mx = mx > z[v] ? mx : z[v];
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int v = 0; v < V; ++v) sum += exp_approx(z[v] - mx);
  return mx + std::log(sum);
}

// z <- dloss · (softmax(z) - onehot(target)), given the row's logsumexp.
MB_CPU_CLONES
void row_grad(float* __restrict z, int V, float lse, int target, float dloss) {
  for (int v = 0; v < V; ++v) z[v] = dloss * exp_approx(z[v] - lse);
  z[target] -= dloss;
}

// Per chunk: logits, then per row the loss (and, with `grad`, the logits' gradient in place,
// zero for masked rows). Row losses go to row_loss[0..rows); their sum is added in row order.
void chunk_pass(float* logits, float* row_loss, const float* h, const float* E,
                const std::int32_t* targets, int rows, int D, int V, bool grad, float dloss) {
  matmul_forward(logits, h, E, nullptr, rows, D, V);
  parallel_for(rows, static_cast<std::int64_t>(rows) * V > 32768, [&](int r) {
    float* z = logits + static_cast<std::size_t>(r) * V;
    const int target = targets[r];
    if (target < 0) {
      row_loss[r] = 0.0f;
      if (grad) std::fill(z, z + V, 0.0f);
      return;
    }
    const float lse = row_lse(z, V);
    row_loss[r] = lse - z[target];
    if (grad) row_grad(z, V, lse, target, dloss);
  });
}

CrossEntropySum run(float* losses, float* dh, float* dE, const float* h, const float* E,
                    const std::int32_t* targets, float dloss, int N, int D, int V, bool grad) {
  const int R = chunk_rows(V);
  std::vector<float> logits(static_cast<std::size_t>(std::min(N, R)) * V);
  std::vector<float> row_loss(static_cast<std::size_t>(std::min(N, R)));
  CrossEntropySum total;
  for (int n0 = 0; n0 < N; n0 += R) {
    const int rows = std::min(R, N - n0);
    const float* hc = h + static_cast<std::size_t>(n0) * D;
    chunk_pass(logits.data(), row_loss.data(), hc, E, targets + n0, rows, D, V, grad, dloss);
    for (int r = 0; r < rows; ++r) {
      if (targets[n0 + r] >= 0) {
        total.loss += row_loss[r];
        ++total.count;
      }
    }
    if (losses) std::copy(row_loss.begin(), row_loss.begin() + rows, losses + n0);
    if (grad)
      matmul_backward(dh ? dh + static_cast<std::size_t>(n0) * D : nullptr, dE, nullptr,
                      logits.data(), hc, E, rows, D, V);
  }
  return total;
}

}  // namespace

std::int64_t crossentropy_count(const std::int32_t* targets, int N) {
  std::int64_t count = 0;
  for (int n = 0; n < N; ++n) count += targets[n] >= 0;
  return count;
}

CrossEntropySum crossentropy_forward(float* losses, const float* h, const float* E,
                                     const std::int32_t* targets, int N, int D, int V) {
  check(targets, N, D, V, "crossentropy_forward");
  return run(losses, nullptr, nullptr, h, E, targets, 0.0f, N, D, V, false);
}

CrossEntropySum crossentropy_backward(float* dh, float* dE, const float* h, const float* E,
                                      const std::int32_t* targets, float dloss, int N, int D,
                                      int V) {
  check(targets, N, D, V, "crossentropy_backward");
  if (!dh && !dE) return run(nullptr, nullptr, nullptr, h, E, targets, 0.0f, N, D, V, false);
  return run(nullptr, dh, dE, h, E, targets, dloss, N, D, V, true);
}

}  // namespace mb::kernels::cpu
