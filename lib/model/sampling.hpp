// Choosing the next byte from a model's logits: temperature, top-k and top-p (nucleus)
// sampling, driven by a seeded generator so that the same seed gives the same bytes.
#pragma once

#include <cstdint>

namespace mb::model {

struct SamplingOptions {
  float temperature = 1.0f;  // logits are divided by it; 0 means greedy (the argmax)
  int top_k = 0;             // keep only the k most likely values; 0 keeps all
  float top_p = 1.0f;        // keep the fewest most likely values whose probability reaches
                             // top_p (Holtzman et al. 2019); 1 keeps all
};

// Throws mb::Error (where = `where`) for a negative or non-finite temperature, a negative
// top_k, or a top_p outside (0, 1].
void validate_sampling(const SamplingOptions& options, const char* where);

// The sampler's random numbers: one splitmix64 sequence (core/rng.hpp) per stream.
class Rng {
 public:
  // `stream` picks one of many independent sequences for the same seed (e.g. sample i of -n).
  explicit Rng(std::uint64_t seed, std::uint64_t stream = 0);
  std::uint64_t next();
  double uniform();  // in [0, 1), 53 random bits

 private:
  std::uint64_t state_;
};

// The index of the largest of n logits (the first, on ties).
int argmax(const float* logits, int n);

// probs[n] = the distribution that sample_index draws from: softmax(logits / temperature),
// cut to the top_k most likely and then to the top_p nucleus, renormalised. Ties in the order
// of likelihood go to the lower index. With temperature 0, all mass on argmax.
void sampling_distribution(double* probs, const float* logits, int n,
                           const SamplingOptions& options);

// Draws an index in [0, n) from sampling_distribution (greedy at temperature 0: no draw).
int sample_index(const float* logits, int n, const SamplingOptions& options, Rng& rng);

}  // namespace mb::model
