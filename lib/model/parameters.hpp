// The trainable tensors of a model, held in one contiguous fp32 buffer (and one buffer of
// gradients of the same layout), with a table of (name, shape, offset). One buffer makes the
// optimiser, gradient clipping and checkpoints a loop over a single array, and the table is what
// a checkpoint writes: names and shapes are documented in megabyte-checkpoint(5).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "backend/backend.hpp"

namespace mb::model {

// How a tensor is initialised and treated by the optimiser.
enum class ParamRole {
  weight,     // a matrix or embedding: truncated normal init, weight decay applies
  bias,       // zero init, no weight decay
  norm_gain,  // layer-norm weight: ones, no weight decay
};

// Which part of the model a tensor belongs to, for parameter counts (`megabyte info`).
enum class ParamGroup { embedding, global, local };

struct ParamInfo {
  std::string name;
  std::vector<std::int64_t> shape;
  std::size_t offset = 0;  // in floats, into ParameterSet::values / grads
  std::size_t size = 0;    // elements
  ParamRole role = ParamRole::weight;
  ParamGroup group = ParamGroup::global;
};

class ParameterSet {
 public:
  // Registration, before allocate(): returns the tensor's index. Names must be unique.
  std::size_t add(std::string name, std::vector<std::int64_t> shape, ParamRole role,
                  ParamGroup group);
  // Allocates values and, unless told not to (a model that is only sampled from), grads
  // (zeroed); no add() after this.
  void allocate(bool with_grads = true);

  const std::vector<ParamInfo>& tensors() const { return tensors_; }
  std::size_t count() const;                          // trainable values (the paper's figure)
  std::size_t buffer_size() const { return total_; }  // floats, with alignment padding
  std::size_t count(ParamGroup group) const;
  const ParamInfo& info(std::size_t index) const { return tensors_.at(index); }
  const ParamInfo* find(const std::string& name) const;  // null if absent

  float* value(std::size_t index) { return values_.data() + tensors_[index].offset; }
  const float* value(std::size_t index) const { return values_.data() + tensors_[index].offset; }
  float* grad(std::size_t index) { return grads_.data() + tensors_[index].offset; }

  std::vector<float>& values() { return values_; }
  const std::vector<float>& values() const { return values_; }
  std::vector<float>& grads() { return grads_; }
  const std::vector<float>& grads() const { return grads_; }

  void zero_grads();
  // The paper's initialisation: weights from a normal with std `std` truncated at ±2σ
  // (redrawn outside), biases 0, norm gains 1. A pure function of `seed`: every tensor draws
  // from its own stream keyed by its name, so adding a tensor does not change the others.
  void initialize(float std, std::uint64_t seed);

 private:
  std::vector<ParamInfo> tensors_;
  std::vector<float> values_, grads_;
  std::size_t total_ = 0;
  bool allocated_ = false;
};

std::string_view param_group_name(ParamGroup g);

// Where the kernels find the tensors of a ParameterSet: its own host buffers on the CPU, or
// copies with the same layout in device memory (see Model::upload_parameters()).
// values_bf16 is the bf16 copy of values (same layout) that the bf16 matrix products read
// and AdamW writes: null in fp32 precision, and until Model::upload_parameters() has made it.
struct ParameterView {
  const ParameterSet* set = nullptr;
  float* values = nullptr;
  float* grads = nullptr;
  std::uint16_t* values_bf16 = nullptr;
  float* value(std::size_t index) const { return values + set->info(index).offset; }
  float* grad(std::size_t index) const { return grads + set->info(index).offset; }
  // The bf16 copy of a tensor, or null when there is none (the products then round value()).
  std::uint16_t* value_bf16(std::size_t index) const {
    return values_bf16 ? values_bf16 + set->info(index).offset : nullptr;
  }
  // A weight as a matrix product's operand: its values and, where kept, its bf16 copy.
  backend::Operand weight(std::size_t index) const { return {value(index), value_bf16(index)}; }
};

}  // namespace mb::model
