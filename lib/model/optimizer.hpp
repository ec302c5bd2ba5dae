// AdamW over a ParameterSet: the moments live in buffers laid out like the parameters, and
// weight decay applies to weight matrices and embeddings only (not to biases or norm gains).
#pragma once

#include <cstdint>
#include <vector>

#include "model/config.hpp"
#include "model/parameters.hpp"

namespace mb::model {

class AdamW {
 public:
  explicit AdamW(const ParameterSet& params);

  // One step with learning rate `lr`; `t` is the 1-based step number (bias correction).
  void step(ParameterSet& params, const OptimizerConfig& opt, double lr, std::int64_t t);

  std::vector<float>& m() { return m_; }
  std::vector<float>& v() { return v_; }
  const std::vector<float>& m() const { return m_; }
  const std::vector<float>& v() const { return v_; }

 private:
  std::vector<float> m_, v_;
};

}  // namespace mb::model
