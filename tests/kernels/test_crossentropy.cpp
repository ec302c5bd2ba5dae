// crossentropy_forward / crossentropy_backward against a double reference, finite
// differences, masking, chunking, and the untouched padding rows of the table.
#include "check.hpp"

#include "cpu/crossentropy.hpp"

#include <stdexcept>

using namespace mb::kernels::cpu;

namespace {

// Per-row losses in double: logits = h · E[0:V]ᵀ, loss = logsumexp - logit[target].
template <class T>
std::vector<double> ref_losses(const std::vector<T>& h, const std::vector<T>& E,
                               const std::vector<std::int32_t>& targets, int N, int D, int V) {
  std::vector<double> loss(N, 0.0), z(V);
  for (int n = 0; n < N; ++n) {
    if (targets[n] < 0) continue;
    double mx = -1e300;
    for (int v = 0; v < V; ++v) {
      double s = 0.0;
      for (int k = 0; k < D; ++k)
        s += static_cast<double>(h[static_cast<std::size_t>(n) * D + k]) *
             static_cast<double>(E[static_cast<std::size_t>(v) * D + k]);
      z[v] = s;
      mx = std::max(mx, s);
    }
    double sum = 0.0;
    for (int v = 0; v < V; ++v) sum += std::exp(z[v] - mx);
    loss[n] = mx + std::log(sum) - z[targets[n]];
  }
  return loss;
}

double total(const std::vector<double>& losses) {
  double s = 0.0;
  for (double l : losses) s += l;
  return s;
}

std::vector<std::int32_t> random_targets(int N, int V, std::uint32_t seed, double masked) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> cls(0, V - 1);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<std::int32_t> t(N);
  for (auto& x : t) x = u(gen) < masked ? -1 : cls(gen);
  return t;
}

}  // namespace

TEST_CASE("crossentropy: forward and finite-difference backward, with masked rows and pads") {
  const int N = 9, D = 5, V = 7, Vtable = 10;  // rows V..Vtable-1 of E are padding ids
  auto h = kt::random_floats(static_cast<std::size_t>(N) * D, 1, -1.5f, 1.5f);
  auto E = kt::random_floats(static_cast<std::size_t>(Vtable) * D, 2, -1.5f, 1.5f);
  auto targets = random_targets(N, V, 3, 0.3);
  targets[0] = -1;
  targets[1] = V - 1;
  targets[2] = 0;
  std::vector<float> losses(N, 5.0f);
  const auto sum = crossentropy_forward(losses.data(), h.data(), E.data(), targets.data(), N, D, V);
  auto hd = kt::to_double(h), Ed = kt::to_double(E);
  const auto want = ref_losses(hd, Ed, targets, N, D, V);
  kt::check_close(losses, want, 1e-5, 1e-5, "crossentropy losses");
  CHECK(sum.count == crossentropy_count(targets.data(), N));
  CHECK(sum.loss == doctest::Approx(total(want)).epsilon(1e-6));
  CHECK(losses[0] == 0.0f);

  const float dloss = 0.37f;
  auto dh0 = kt::random_floats(h.size(), 4), dE0 = kt::random_floats(E.size(), 5);
  auto dh = dh0, dE = dE0;
  const auto bsum = crossentropy_backward(dh.data(), dE.data(), h.data(), E.data(), targets.data(),
                                          dloss, N, D, V);
  CHECK(bsum.count == sum.count);
  CHECK(bsum.loss == doctest::Approx(sum.loss).epsilon(1e-6));
  auto nh = kt::numeric_grad(hd, [&](const std::vector<double>& x) {
    return dloss * total(ref_losses(x, Ed, targets, N, D, V));
  });
  auto nE = kt::numeric_grad(Ed, [&](const std::vector<double>& x) {
    return dloss * total(ref_losses(hd, x, targets, N, D, V));
  });
  for (std::size_t i = 0; i < nh.size(); ++i) nh[i] += dh0[i];
  for (std::size_t i = 0; i < nE.size(); ++i) nE[i] += dE0[i];
  kt::check_close(dh, nh, 1e-3, 1e-4, "crossentropy dh");
  kt::check_close(dE, nE, 1e-3, 1e-4, "crossentropy dE");
  // Masked rows get no gradient; padding rows of the table are never touched.
  for (int k = 0; k < D; ++k) CHECK(dh[k] == dh0[k]);
  for (std::size_t i = static_cast<std::size_t>(V) * D; i < E.size(); ++i) CHECK(dE[i] == dE0[i]);
}

TEST_CASE("crossentropy: masked rows contribute nothing, whatever their hidden state") {
  const int N = 12, D = 6, V = 8;
  auto h = kt::random_floats(static_cast<std::size_t>(N) * D, 10);
  auto E = kt::random_floats(static_cast<std::size_t>(V) * D, 11);
  auto targets = random_targets(N, V, 12, 0.0);
  for (int n = 0; n < N; n += 3) targets[n] = -1;
  // The same problem with only the unmasked rows.
  std::vector<float> h_kept;
  std::vector<std::int32_t> t_kept;
  for (int n = 0; n < N; ++n)
    if (targets[n] >= 0) {
      h_kept.insert(h_kept.end(), h.begin() + n * D, h.begin() + (n + 1) * D);
      t_kept.push_back(targets[n]);
    }
  const int K = static_cast<int>(t_kept.size());
  auto h_garbage = h;
  for (int n = 0; n < N; n += 3)
    for (int k = 0; k < D; ++k) h_garbage[n * D + k] = 1000.0f;  // would dominate if counted

  std::vector<float> dE_all(E.size(), 0.0f), dE_kept(E.size(), 0.0f);
  const auto all = crossentropy_backward(nullptr, dE_all.data(), h_garbage.data(), E.data(),
                                         targets.data(), 1.0f, N, D, V);
  const auto kept = crossentropy_backward(nullptr, dE_kept.data(), h_kept.data(), E.data(),
                                          t_kept.data(), 1.0f, K, D, V);
  CHECK(all.count == K);
  CHECK(kept.count == K);
  CHECK(all.loss == doctest::Approx(kept.loss).epsilon(1e-6));
  kt::check_close(dE_all, dE_kept, 1e-5, 1e-6, "crossentropy dE with masked rows");
}

TEST_CASE("crossentropy: several chunks of rows against the analytic double reference") {
  const int V = 256, D = 16;
  const int N = 2 * (kCrossEntropyChunkFloats / V) + 37;  // two full chunks and a partial one
  auto h = kt::random_floats(static_cast<std::size_t>(N) * D, 20, -2.0f, 2.0f);
  auto E = kt::random_floats(static_cast<std::size_t>(V) * D, 21, -2.0f, 2.0f);
  auto targets = random_targets(N, V, 22, 0.1);
  std::vector<float> losses(N);
  const auto fsum =
      crossentropy_forward(losses.data(), h.data(), E.data(), targets.data(), N, D, V);
  kt::check_close(losses, ref_losses(h, E, targets, N, D, V), 1e-5, 1e-5, "chunked losses");

  const float dloss = 1.0f / static_cast<float>(fsum.count);
  std::vector<float> dh(h.size(), 0.0f), dE(E.size(), 0.0f);
  const auto bsum = crossentropy_backward(dh.data(), dE.data(), h.data(), E.data(), targets.data(),
                                          dloss, N, D, V);
  CHECK(bsum.loss == doctest::Approx(fsum.loss).epsilon(1e-9));
  // dlogits = dloss (softmax - onehot); dh = dlogits · E, dE = dlogitsᵀ · h.
  std::vector<double> want_dh(h.size(), 0.0), want_dE(E.size(), 0.0), z(V);
  for (int n = 0; n < N; ++n) {
    if (targets[n] < 0) continue;
    double mx = -1e300, sum = 0.0;
    for (int v = 0; v < V; ++v) {
      double s = 0.0;
      for (int k = 0; k < D; ++k) s += static_cast<double>(h[n * D + k]) * E[v * D + k];
      z[v] = s;
      mx = std::max(mx, s);
    }
    for (int v = 0; v < V; ++v) sum += (z[v] = std::exp(z[v] - mx));
    for (int v = 0; v < V; ++v) {
      const double g = dloss * (z[v] / sum - (v == targets[n] ? 1.0 : 0.0));
      for (int k = 0; k < D; ++k) {
        want_dh[n * D + k] += g * E[v * D + k];
        want_dE[v * D + k] += g * h[n * D + k];
      }
    }
  }
  kt::check_close(dh, want_dh, 1e-3, 1e-6, "chunked dh");
  kt::check_close(dE, want_dE, 1e-3, 1e-6, "chunked dE");
}

TEST_CASE("crossentropy: targets at or above V are rejected") {
  const int D = 2, V = 3;
  std::vector<float> h(2 * D, 0.5f), E(V * D, 0.5f), losses(2, 9.0f);
  std::vector<std::int32_t> bad{0, 3};
  CHECK_THROWS_AS(crossentropy_forward(losses.data(), h.data(), E.data(), bad.data(), 2, D, V),
                  std::out_of_range);
  CHECK(losses == std::vector<float>(2, 9.0f));
}
