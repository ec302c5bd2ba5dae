#include "model/optimizer.hpp"

#include "cpu/adamw.hpp"

namespace mb::model {

AdamW::AdamW(const ParameterSet& params)
    : m_(params.buffer_size(), 0.0f), v_(params.buffer_size(), 0.0f) {}

void AdamW::step(ParameterSet& params, const OptimizerConfig& opt, double lr, std::int64_t t) {
  for (std::size_t i = 0; i < params.tensors().size(); ++i) {
    const ParamInfo& info = params.info(i);
    const float decay = info.role == ParamRole::weight ? static_cast<float>(opt.weight_decay) : 0.0f;
    kernels::cpu::adamw_step(params.value(i), params.grad(i), m_.data() + info.offset,
                             v_.data() + info.offset, info.size, static_cast<long>(t),
                             static_cast<float>(lr), static_cast<float>(opt.beta1),
                             static_cast<float>(opt.beta2), static_cast<float>(opt.eps), decay);
  }
}

}  // namespace mb::model
