// The YAML config with --set overrides: parse_config on any text, the lines after a line
// "--set" being the overrides (KEY=VALUE each). What parses must write itself out
// (config_to_yaml) as YAML that parses back to an equal Config, as megabyte-config(5) says
// and as run directories and checkpoints rely on.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "model/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> overrides;
  if (auto at = text.find("\n--set\n"); at != std::string::npos) {
    std::string sets = text.substr(at + 7);
    text.resize(at + 1);
    for (std::size_t b = 0; b <= sets.size();) {
      std::size_t e = sets.find('\n', b);
      if (e == std::string::npos) e = sets.size();
      if (e > b) overrides.push_back(sets.substr(b, e - b));
      b = e + 1;
    }
  }
  mb::fuzz::expect_only_mb_errors([&] {
    const mb::model::Config c = mb::model::parse_config(text, "config.yaml", overrides);
    const std::string yaml = mb::model::config_to_yaml(c);
    if (!(mb::model::parse_config(yaml, "config_to_yaml") == c)) {
      std::fprintf(stderr, "config does not round-trip:\n%s\n", yaml.c_str());
      std::abort();
    }
  });
  return 0;
}
