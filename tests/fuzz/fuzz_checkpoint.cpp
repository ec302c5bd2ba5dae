// A whole checkpoint, as `info --verify`, `eval` and `sample` open one: the input is split
// into model.safetensors and optimizer.safetensors (a 4-byte little-endian length of the
// first, then the two files). read_checkpoint_info (metadata, the config inside it, the
// recorded encoder), verify_checkpoint against the config's parameter table, load_model
// on the CPU (which must refuse a config larger than the file before allocating it) and
// load_optimizer_state.
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "backend/backend.hpp"
#include "fuzz_common.hpp"
#include "model/checkpoint.hpp"
#include "model/load_model.hpp"
#include "model/model.hpp"

using namespace mb;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  std::uint32_t first = 0;
  for (int i = 3; i >= 0; --i) first = (first << 8) | data[i];
  std::span<const std::uint8_t> rest(data + 4, size - 4);
  if (first > rest.size()) return 0;
  mb::fuzz::write_scratch("model.safetensors", rest.first(first));
  mb::fuzz::write_scratch("optimizer.safetensors", rest.subspan(first));
  const std::filesystem::path dir = mb::fuzz::scratch_dir();
  static const std::shared_ptr<backend::Backend> cpu = backend::make_backend(backend::Device::cpu);
  mb::fuzz::expect_only_mb_errors([&] {
    const model::CheckpointInfo info = model::read_checkpoint_info(dir, true);
    const auto table = model::make_model(info.config.model, 0);  // names and shapes only
    try {
      model::verify_checkpoint(dir, table->parameters());
    } catch (const mb::Error&) {
    }
    auto net = model::load_model(dir, info.config.model, 0, cpu);
    std::vector<float> m, v;
    (void)model::load_optimizer_state(dir, net->parameters(), m, v);
  });
  return 0;
}
