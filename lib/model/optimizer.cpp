#include "model/optimizer.hpp"

namespace mb::model {

AdamW::AdamW(const Model& model)
    : backend_(model.backend()),
      m_(model.parameters().buffer_size(), 0.0f),
      v_(model.parameters().buffer_size(), 0.0f) {
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
    const float decay =
        info.role == ParamRole::weight ? static_cast<float>(opt.weight_decay) : 0.0f;
    backend_->adamw_step(view.value(i), view.value_bf16(i), view.grad(i), m_ptr_ + info.offset,
                         v_ptr_ + info.offset, info.size, static_cast<long>(t),
                         static_cast<float>(lr), static_cast<float>(opt.beta1),
                         static_cast<float>(opt.beta2), static_cast<float>(opt.eps), decay);
  }
}

}  // namespace mb::model
