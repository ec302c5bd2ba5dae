#include "model/optimizer.hpp"

#include <algorithm>
#include <stdexcept>

namespace mb::model {

AdamW::AdamW(const Model& model) : AdamW(model, {0, model.parameters().buffer_size()}) {}

AdamW::AdamW(const Model& model, dist::Range shard)
    : backend_(model.backend()), shard_(shard), m_(shard.size(), 0.0f), v_(shard.size(), 0.0f) {
  if (shard.end > model.parameters().buffer_size() || shard.begin > shard.end)
    throw std::logic_error("AdamW: a shard outside the parameter buffer");
  m_ptr_ = m_.data();
  v_ptr_ = v_.data();
  if (backend_ && !backend_->shares_host_memory()) {
    const std::size_t bytes = m_.size() * sizeof(float);
    device_m_ = backend::DeviceMemory(*backend_, bytes);
    device_v_ = backend::DeviceMemory(*backend_, bytes);
    m_ptr_ = device_m_.as<float>();
    v_ptr_ = device_v_.as<float>();
    upload();
  }
}

void AdamW::upload() {
  if (m_ptr_ == m_.data()) return;
  backend_->upload(m_ptr_, m_.data(), m_.size() * sizeof(float));
  backend_->upload(v_ptr_, v_.data(), v_.size() * sizeof(float));
}

void AdamW::download() {
  if (m_ptr_ == m_.data()) return;
  backend_->download(m_.data(), m_ptr_, m_.size() * sizeof(float));
  backend_->download(v_.data(), v_ptr_, v_.size() * sizeof(float));
}

void AdamW::step(Model& model, const OptimizerConfig& opt, double lr, std::int64_t t) {
  const ParameterSet& params = model.parameters();
  const ParameterView& view = model.view();
  for (std::size_t i = 0; i < params.tensors().size(); ++i) {
    const ParamInfo& info = params.info(i);
    // The tensor's values within the shard: [lo, hi) of the flat buffer.
    const std::size_t lo = std::max(info.offset, shard_.begin);
    const std::size_t hi = std::min(info.offset + info.size, shard_.end);
    if (lo >= hi) continue;
    const std::size_t skip = lo - info.offset;
    std::uint16_t* bf16 = view.value_bf16(i);
    const float decay =
        info.role == ParamRole::weight ? static_cast<float>(opt.weight_decay) : 0.0f;
    backend_->adamw_step(view.value(i) + skip, bf16 ? bf16 + skip : nullptr, view.grad(i) + skip,
                         m_ptr_ + (lo - shard_.begin), v_ptr_ + (lo - shard_.begin), hi - lo,
                         static_cast<long>(t), static_cast<float>(lr),
                         static_cast<float>(opt.beta1), static_cast<float>(opt.beta2),
                         static_cast<float>(opt.eps), decay);
  }
}

}  // namespace mb::model
