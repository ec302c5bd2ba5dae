// AdamW over a model's parameters: the moments are laid out like the parameters, and weight
// decay applies to weight matrices and embeddings only (not to biases or norm gains). The step
// runs on the model's backend; the moments checkpoints read and write are the host vectors m()
// and v(), which download() and upload() keep in step with a device copy where there is one.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.hpp"
#include "model/config.hpp"
#include "model/model.hpp"

namespace mb::model {

class AdamW {
 public:
  explicit AdamW(const Model& model);

  // One step of the model's parameters (view().values) from its gradients (view().grads) with
  // learning rate `lr`; `t` is the 1-based step number (bias correction). Where the model keeps
  // a bf16 copy of its parameters (view().values_bf16), the step rewrites it from the new values.
  void step(Model& model, const OptimizerConfig& opt, double lr, std::int64_t t);

  std::vector<float>& m() { return m_; }
  std::vector<float>& v() { return v_; }
  const std::vector<float>& m() const { return m_; }
  const std::vector<float>& v() const { return v_; }

  // Host moments to the device copy (after loading a checkpoint), and back (before writing
  // one). No-ops where the device uses host memory.
  void upload();
  void download();

 private:
  backend::Backend* backend_;
  std::vector<float> m_, v_;
  backend::DeviceMemory device_m_, device_v_;  // empty where the device uses host memory
  float* m_ptr_ = nullptr;
  float* v_ptr_ = nullptr;
};

}  // namespace mb::model
