// AdamW over a model's parameters: the moments are laid out like the parameters, and weight
// decay applies to weight matrices and embeddings only (not to biases or norm gains). The step
// runs on the model's backend; the moments checkpoints read and write are the host vectors m()
// and v(), which download() and upload() keep in step with a device copy where there is one.
//
// Sharded (ZeRO stage 1, train.zero: 1), an AdamW keeps the moments of a part of the flat
// parameter buffer only and its step updates that part; the ranks of the job then gather the
// parameters (train_step.cpp). The update of each value is the same arithmetic either way.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.hpp"
#include "dist/shard.hpp"
#include "model/config.hpp"
#include "model/model.hpp"

namespace mb::model {

class AdamW {
 public:
  // The moments of every parameter.
  explicit AdamW(const Model& model);
  // The moments of parameters [shard.begin, shard.end) of the flat buffer only.
  AdamW(const Model& model, dist::Range shard);

  // One step of the model's parameters (view().values) from its gradients (view().grads) with
  // learning rate `lr`; `t` is the 1-based step number (bias correction). Where the model keeps
  // a bf16 copy of its parameters (view().values_bf16), the step rewrites it from the new values.
  // Sharded, only the shard's values (and bf16 copies) change.
  void step(Model& model, const OptimizerConfig& opt, double lr, std::int64_t t);

  // The part of the flat parameter buffer whose moments m() and v() hold (m()[i] is that of
  // parameter shard().begin + i).
  dist::Range shard() const { return shard_; }

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
  dist::Range shard_;
  std::vector<float> m_, v_;
  backend::DeviceMemory device_m_, device_v_;  // empty where the device uses host memory
  float* m_ptr_ = nullptr;
  float* v_ptr_ = nullptr;
};

}  // namespace mb::model
