#include "model/parameters.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "core/hash.hpp"
#include "core/rng.hpp"

namespace mb::model {

namespace {

// Uniform in (0, 1): 53 random bits, never exactly 0.
double uniform_open(std::uint64_t& state) {
  return (static_cast<double>(splitmix64_next(state) >> 11) + 0.5) * 0x1.0p-53;
}

// Standard normal by Box-Muller, truncated to [-2, 2] by rejection (as
// torch.nn.init.trunc_normal_ with a = -2σ, b = 2σ).
double truncated_normal(std::uint64_t& state) {
  constexpr double kTwoPi = 6.283185307179586;
  for (;;) {
    const double r = std::sqrt(-2.0 * std::log(uniform_open(state)));
    const double z = r * std::cos(kTwoPi * uniform_open(state));
    if (z >= -2.0 && z <= 2.0) return z;
  }
}

}  // namespace

std::size_t ParameterSet::add(std::string name, std::vector<std::int64_t> shape, ParamRole role,
                              ParamGroup group) {
  if (allocated_) throw std::logic_error("ParameterSet::add after allocate");
  if (find(name)) throw std::logic_error("duplicate parameter name " + name);
  std::size_t size = 1;
  for (std::int64_t d : shape) {
    if (d <= 0) throw std::logic_error("parameter " + name + " has a non-positive dimension");
    size *= static_cast<std::size_t>(d);
  }
  ParamInfo info{std::move(name), std::move(shape), total_, size, role, group};
  // Keep every tensor 64-byte aligned in the buffer (whole cache lines, aligned SIMD loads).
  total_ += (size + 15) / 16 * 16;
  tensors_.push_back(std::move(info));
  return tensors_.size() - 1;
}

void ParameterSet::allocate(bool with_grads) {
  values_.assign(total_, 0.0f);
  grads_.assign(with_grads ? total_ : 0, 0.0f);
  allocated_ = true;
}

std::size_t ParameterSet::count(ParamGroup group) const {
  std::size_t n = 0;
  for (const ParamInfo& t : tensors_)
    if (t.group == group) n += t.size;
  return n;
}

std::size_t ParameterSet::count() const {
  std::size_t n = 0;
  for (const ParamInfo& t : tensors_) n += t.size;
  return n;
}

const ParamInfo* ParameterSet::find(const std::string& name) const {
  for (const ParamInfo& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

void ParameterSet::zero_grads() { std::fill(grads_.begin(), grads_.end(), 0.0f); }

void ParameterSet::initialize(float std, std::uint64_t seed) {
  std::fill(values_.begin(), values_.end(), 0.0f);
  for (const ParamInfo& t : tensors_) {
    float* p = values_.data() + t.offset;
    switch (t.role) {
      case ParamRole::bias: std::fill(p, p + t.size, 0.0f); break;
      case ParamRole::norm_gain: std::fill(p, p + t.size, 1.0f); break;
      case ParamRole::weight: {
        std::uint64_t state = seed ^ xxh64(std::string_view(t.name));
        for (std::size_t i = 0; i < t.size; ++i)
          p[i] = static_cast<float>(std * truncated_normal(state));
        break;
      }
    }
  }
}

std::string_view param_group_name(ParamGroup g) {
  switch (g) {
    case ParamGroup::embedding: return "embedding";
    case ParamGroup::global: return "global";
    case ParamGroup::local: return "local";
  }
  return "?";
}

}  // namespace mb::model
