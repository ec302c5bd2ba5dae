// Peak dense matrix rates of the GPUs we know, for model FLOP utilisation (MFU) in
// `megabyte bench`. Figures are NVIDIA's datasheet numbers without structured sparsity; the
// table is printed in megabyte-bench(1). A device not in the table gets zeros, and bench then
// reports no MFU rather than a guess.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mb::backend {

struct DevicePeaks {
  double bf16 = 0.0;      // FLOP/s, bf16 inputs with fp32 accumulation (tensor cores)
  double fp32 = 0.0;      // FLOP/s, plain fp32 FMA (no TF32)
  std::string_view name;  // the table's name for the device, empty when unknown
};

// The peaks of a device from its CUDA name (cudaDeviceProp::name, e.g. "NVIDIA H100 80GB HBM3").
DevicePeaks device_peaks(std::string_view cuda_device_name);

// The whole table (for the man page test and `megabyte bench --help`-style listings).
const std::vector<DevicePeaks>& known_device_peaks();

}  // namespace mb::backend
