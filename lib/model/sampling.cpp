#include "model/sampling.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"

namespace mb::model {

void validate_sampling(const SamplingOptions& o, const char* where) {
  if (!(o.temperature >= 0.0f) || !std::isfinite(o.temperature))
    throw Error(where, "temperature " + std::to_string(o.temperature) + " is not a number >= 0",
                "use 0 (greedy), 1 (the model's own distribution) or anything between and above");
  if (o.top_k < 0)
    throw Error(where, "top-k " + std::to_string(o.top_k) + " is negative",
                "use 0 (off) or k >= 1");
  if (!(o.top_p > 0.0f && o.top_p <= 1.0f))
    throw Error(where, "top-p " + std::to_string(o.top_p) + " is outside (0, 1]",
                "use a probability such as 0.9, or 1 (off)");
}

// The seed is mixed before use so that nearby seeds (1, 2, 3) start far apart, and each stream
// starts at its own offset of the one splitmix64 sequence of that seed.
Rng::Rng(std::uint64_t seed, std::uint64_t stream)
    : state_(splitmix64_mix(seed ^ 0x243F6A8885A308D3ull) + stream * 0xD1B54A32D192ED03ull) {}

std::uint64_t Rng::next() { return splitmix64_next(state_); }

double Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

int argmax(const float* logits, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  return best;
}

void sampling_distribution(double* probs, const float* logits, int n, const SamplingOptions& o) {
  std::fill_n(probs, n, 0.0);
  if (n <= 0) return;
  if (o.temperature == 0.0f) {
    probs[argmax(logits, n)] = 1.0;
    return;
  }
  // Softmax in double, the maximum subtracted first.
  const double mx = logits[argmax(logits, n)];
  double sum = 0.0;
  for (int i = 0; i < n; ++i) sum += probs[i] = std::exp((logits[i] - mx) / o.temperature);
  for (int i = 0; i < n; ++i) probs[i] /= sum;
  if (o.top_k == 0 && o.top_p >= 1.0f) return;

  // Most likely first; stable, so equal logits keep index order.
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return logits[a] > logits[b]; });
  int keep = n;
  if (o.top_k > 0) keep = std::min(keep, o.top_k);
  if (o.top_p < 1.0f) {
    double cum = 0.0;
    for (int r = 0; r < keep; ++r) {
      cum += probs[order[r]];
      if (cum >= o.top_p) {
        keep = r + 1;
        break;
      }
    }
  }
  double kept = 0.0;
  for (int r = 0; r < keep; ++r) kept += probs[order[r]];
  for (int r = keep; r < n; ++r) probs[order[r]] = 0.0;
  for (int r = 0; r < keep; ++r) probs[order[r]] /= kept;
}

int sample_index(const float* logits, int n, const SamplingOptions& o, Rng& rng) {
  if (o.temperature == 0.0f) return argmax(logits, n);
  std::vector<double> probs(n);
  sampling_distribution(probs.data(), logits, n, o);
  // Inverse CDF in index order; the last index with mass takes what rounding leaves over.
  const double u = rng.uniform();
  double cum = 0.0;
  int last = 0;
  for (int i = 0; i < n; ++i) {
    if (probs[i] == 0.0) continue;
    last = i;
    cum += probs[i];
    if (u < cum) return i;
  }
  return last;
}

}  // namespace mb::model
