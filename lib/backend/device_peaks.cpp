#include "backend/device_peaks.hpp"

namespace mb::backend {

namespace {

struct Entry {
  std::string_view match;  // a substring of the CUDA device name
  DevicePeaks peaks;
};

// First match wins, so the more specific names come first. TFLOP/s from NVIDIA's datasheets,
// dense (the sparse figures are twice these).
const std::vector<Entry>& table() {
  static const std::vector<Entry> entries = {
      {"H200", {989.4e12, 66.9e12, "H200 SXM"}},
      {"H100 PCIe", {756.0e12, 51.2e12, "H100 PCIe"}},
      {"H100 NVL", {835.5e12, 60.0e12, "H100 NVL"}},
      {"H100", {989.4e12, 66.9e12, "H100 SXM"}},
      {"A100", {312.0e12, 19.5e12, "A100"}},
  };
  return entries;
}

}  // namespace

DevicePeaks device_peaks(std::string_view cuda_device_name) {
  for (const Entry& e : table())
    if (cuda_device_name.find(e.match) != std::string_view::npos) return e.peaks;
  return {};
}

const std::vector<DevicePeaks>& known_device_peaks() {
  static const std::vector<DevicePeaks> all = [] {
    std::vector<DevicePeaks> v;
    for (const Entry& e : table()) v.push_back(e.peaks);
    return v;
  }();
  return all;
}

}  // namespace mb::backend
