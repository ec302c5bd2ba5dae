// safetensors: SafetensorsFile::open on any file (the header's JSON, its entries, the data
// buffer's tiling, the checksum), then every F32 tensor read back.
#include <cstdint>
#include <vector>

#include "fuzz_common.hpp"
#include "model/safetensors.hpp"

using mb::model::SafetensorsFile;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = mb::fuzz::write_scratch("file.safetensors", {data, size});
  mb::fuzz::expect_only_mb_errors([&] {
    const SafetensorsFile f = SafetensorsFile::open(path);
    std::vector<float> values;
    for (const SafetensorsFile::Entry& e : f.tensors()) {
      if (f.find(e.name) != &e) std::abort();
      if (e.dtype != "F32") continue;
      // open() has checked that the tensor's bytes lie inside the file, so this is bounded
      // by the input's size.
      values.resize((e.end - e.begin) / 4);
      f.read_f32(e.name, e.shape, values.data());
    }
  });
  return 0;
}
