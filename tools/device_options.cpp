#include "device_options.hpp"

namespace mb::tools {

backend::Device DeviceOptions::resolved_device() const {
  return device.empty() ? backend::default_device() : backend::parse_device(device, "--device");
}

backend::Precision DeviceOptions::resolved_precision() const {
  return precision.empty() ? backend::default_precision(resolved_device())
                           : backend::parse_precision(precision, "--precision");
}

std::shared_ptr<backend::Backend> DeviceOptions::make_backend() const {
  return backend::make_backend(resolved_device(), resolved_precision());
}

void add_device_options(CLI::App* sub, DeviceOptions& options) {
  sub->add_option("--device", options.device,
                  "cpu or cuda (default: cuda where a GPU is found, else cpu)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  sub->add_option("--precision", options.precision,
                  "Matrix products: bf16 (operands rounded to bf16, fp32 accumulation) or fp32 "
                  "(default: bf16 on cuda, fp32 on cpu)")
      ->check(CLI::IsMember({"fp32", "bf16"}));
}

}  // namespace mb::tools
