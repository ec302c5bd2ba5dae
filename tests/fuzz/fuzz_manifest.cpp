// dataset.yaml: Manifest::parse on any text. What parses must write itself out (to_yaml)
// as a manifest that parses back to the same text.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "data/manifest.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  mb::fuzz::expect_only_mb_errors([&] {
    const mb::data::Manifest m = mb::data::Manifest::parse(text, "dataset.yaml");
    (void)m.fingerprint();
    const std::string yaml = m.to_yaml();
    if (mb::data::Manifest::parse(yaml, "to_yaml").to_yaml() != yaml) std::abort();
  });
  return 0;
}
