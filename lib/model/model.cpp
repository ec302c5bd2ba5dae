#include "model/model.hpp"

#include <algorithm>
#include <stdexcept>

#include <string>

#include "core/error.hpp"

namespace mb::model {

std::unique_ptr<Model> make_model(const ModelConfig& config, int max_batch,
                                  std::shared_ptr<backend::Backend> backend,
                                  const ActivationPolicy& policy) {
  const backend::Device device = backend ? backend->device() : backend::Device::cpu;
  const backend::Precision precision = backend ? backend->precision() : backend::Precision::fp32;
  if (config.kind == ModelKind::megabyte)
    return make_megabyte_model(config, max_batch, std::move(backend), device, precision, policy);
  return make_byte_transformer_model(config, max_batch, std::move(backend), device, precision,
                                     policy);
}

std::unique_ptr<Model> make_model(const ModelConfig& config, int max_batch) {
  return make_model(config, max_batch,
                    max_batch > 0 ? backend::make_backend(backend::Device::cpu) : nullptr);
}

std::unique_ptr<Model> make_model_plan(const ModelConfig& config, int max_batch,
                                       backend::Device device, backend::Precision precision,
                                       const ActivationPolicy& policy) {
  if (config.kind == ModelKind::megabyte)
    return make_megabyte_model(config, max_batch, nullptr, device, precision, policy);
  return make_byte_transformer_model(config, max_batch, nullptr, device, precision, policy);
}

void Model::commit_memory() {
  activation_bytes_ = arena_.bytes();
  // Else weights only (a Generator's), a description, or a model for inference.
  const bool trainable = max_batch_ > 0 && !inference_only_;
  if (max_batch_ == 0 && !backend_) return;  // a description of the parameters only
  const bool host_memory =
      backend_ ? backend_->shares_host_memory() : device_ == backend::Device::cpu;
  if (!host_memory) {
    device_values_ = arena_.reserve<float>(params_.buffer_size());
    if (trainable) device_grads_ = arena_.reserve<float>(params_.buffer_size());
  }
  if (backend::keeps_bf16_weights(precision_))
    bf16_values_ = arena_.reserve<std::uint16_t>(params_.buffer_size());
  if (!backend_) return;  // a plan: sizes only
  params_.allocate(trainable);
  arena_.commit(*backend_);
  view_.set = &params_;
  if (host_memory) {
    view_.values = params_.values().data();
    view_.grads = trainable ? params_.grads().data() : nullptr;
  } else {
    view_.values = device_values_.get();
    view_.grads = trainable ? device_grads_.get() : nullptr;
  }
  losses_.assign(static_cast<std::size_t>(max_batch_) * config_.context, 0.0f);
}

ModelMemory Model::memory() const {
  ModelMemory m;
  const std::size_t n = params_.buffer_size() * sizeof(float);
  m.parameters = n;
  m.gradients = max_batch_ > 0 && !inference_only_ ? n : 0;
  if (backend::keeps_bf16_weights(precision_))
    m.bf16_weights = params_.buffer_size() * sizeof(std::uint16_t);
  m.activations = activation_bytes_;
  return m;
}

void Model::check_trainable(bool training) const {
  if (training && inference_only_)
    throw std::logic_error("Model: a training forward() on a model made for inference only");
}

void Model::check_head_dim(int width, int heads, const char* key) const {
  const int limit = backend::max_head_dim(device_);
  if (heads > 0 && width / heads > limit)
    throw Error(key,
                "attention heads of width " + std::to_string(width / heads) + " (" +
                    std::to_string(width) + " / " + std::to_string(heads) +
                    ") are wider than the " + std::string(backend::device_name(device_)) +
                    " attention kernels take (" + std::to_string(limit) + ")",
                "raise " + std::string(key) + " so that width / heads <= " + std::to_string(limit));
}

void Model::upload_parameters() {
  if (view_.values != params_.values().data())
    backend_->upload(view_.values, params_.values().data(), params_.buffer_size() * sizeof(float));
  if (bf16_values_.size() > 0) {
    backend_->to_bf16(bf16_values_.get(), view_.values, params_.buffer_size());
    view_.values_bf16 = bf16_values_.get();
  }
}

void Model::download_parameters() {
  if (view_.values != params_.values().data())
    backend_->download(params_.values().data(), view_.values,
                       params_.buffer_size() * sizeof(float));
}

void Model::download_gradients() {
  if (!view_.grads)
    throw std::logic_error("Model: a model of weights only, or for inference, has no gradients");
  if (view_.grads != params_.grads().data())
    backend_->download(params_.grads().data(), view_.grads, params_.buffer_size() * sizeof(float));
}

void Model::zero_gradients() {
  if (!view_.grads)
    throw std::logic_error("Model: a model of weights only, or for inference, has no gradients");
  backend_->zero(view_.grads, params_.buffer_size() * sizeof(float));
}

void Model::upload_ids(const backend::Slice<std::int32_t>& device_ids, const std::int32_t* host,
                       std::size_t n) {
  backend_->upload(device_ids.get(), host, n * sizeof(std::int32_t));
}

void Model::fetch_losses(const backend::Slice<float>& device_losses, std::size_t n) {
  backend_->download(losses_.data(), device_losses.get(), n * sizeof(float));
}

void Model::tied_logits(float* out, const float* h, const float* E, int rows, int D) {
  const std::size_t bytes = static_cast<std::size_t>(rows) * kByteValues * sizeof(float);
  if (backend_->shares_host_memory()) {
    backend_->head_logits(out, h, E, rows, D, kByteValues);
    return;
  }
  backend::DeviceMemory logits(*backend_, bytes);
  backend_->head_logits(logits.as<float>(), h, E, rows, D, kByteValues);
  backend_->download(out, logits.get(), bytes);
}

void Model::check_decodable(int batch) const {
  if (!backend_ || !view_.values)
    throw std::logic_error("Model::make_decoder: the model's parameters are not allocated");
  if (batch < 1) throw std::logic_error("Model::make_decoder: batch must be at least 1");
}

ActivationPolicy activation_policy(const ModelConfig& model, Recompute recompute) {
  ActivationPolicy p;
  p.recompute_global = recompute == Recompute::global || recompute == Recompute::all;
  p.recompute_local = model.kind == ModelKind::megabyte &&
                      (recompute == Recompute::local || recompute == Recompute::all);
  return p;
}

ActivationPolicy activation_policy(const ModelConfig& model, const TrainConfig& train) {
  ActivationPolicy p = activation_policy(model, train.recompute);
  if (model.kind == ModelKind::megabyte) p.local_chunk = train.local_chunk;
  return p;
}

ActivationPolicy inference_policy(const ModelConfig& model, const TrainConfig& train,
                                  backend::Device device) {
  ActivationPolicy p = activation_policy(model, train);
  p.inference_only = true;
  if (model.kind == ModelKind::megabyte && device == backend::Device::cpu) {
    const int cached = std::max(1, kCpuInferenceLocalRows / std::max(1, model.patch_size));
    p.local_chunk = p.local_chunk > 0 ? std::min(p.local_chunk, cached) : cached;
  }
  return p;
}

void targets_from_ids(std::int32_t* targets, const std::int32_t* ids, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) targets[i] = ids[i] < kByteValues ? ids[i] : -1;
}

std::int64_t count_targets(const std::int32_t* ids, std::size_t n) {
  std::int64_t count = 0;
  for (std::size_t i = 0; i < n; ++i) count += ids[i] >= 0 && ids[i] < kByteValues;
  return count;
}

}  // namespace mb::model
