// --device and --precision, shared by train, eval, sample and bench.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "backend/backend.hpp"

namespace mb::tools {

struct DeviceOptions {
  std::string device;     // as given; empty: backend::default_device()
  std::string precision;  // as given; empty: backend::default_precision(device)

  backend::Device resolved_device() const;
  backend::Precision resolved_precision() const;
  // The backend they name (an mb::Error saying why when the device cannot be used).
  std::shared_ptr<backend::Backend> make_backend() const;
};

void add_device_options(CLI::App* sub, DeviceOptions& options);

}  // namespace mb::tools
