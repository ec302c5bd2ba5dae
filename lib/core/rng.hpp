// The library's random numbers: splitmix64 (Steele, Lea, Flood 2014), tiny, fast, and the same
// numbers on every platform, which the standard distributions do not promise. Everything the
// library draws (initial weights, sampled bytes) and every seed it derives (each dropout site's
// of each step) comes from here, so a run is a pure function of its seeds.
//
// The dropout masks themselves are drawn by the kernels, on the host and on the device, from
// the same generator (kernels/cpu/dropout.hpp keeps its own host-and-device copy of the mixer:
// kernels depend on nothing of lib/).
#pragma once

#include <cstdint>

namespace mb {

// splitmix64's output function: a bijective 64-bit mixer whose outputs for consecutive inputs
// pass BigCrush. Mixing a seed first makes nearby seeds (1, 2, 3) give unrelated streams.
constexpr std::uint64_t splitmix64_mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The next number of the splitmix64 sequence whose state is `state` (advanced).
constexpr std::uint64_t splitmix64_next(std::uint64_t& state) {
  return splitmix64_mix(state += 0x9E3779B97F4A7C15ull);
}

}  // namespace mb
