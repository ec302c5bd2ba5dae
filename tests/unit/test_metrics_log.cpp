// The JSONL metrics log: a resumed run drops the lines after its checkpoint and a torn last
// line; an unwritable place is named.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "error_of.hpp"
#include "temp_dir.hpp"
#include "train/metrics_log.hpp"

namespace fs = std::filesystem;
using mb::test::contains;
using mb::test::error_of;
using mb::test::TempDir;

TEST_CASE("metrics log: resuming drops the lines after the checkpoint and a torn last line") {
  TempDir tmp("tp-metrics");
  const fs::path path = tmp.path / "metrics.jsonl";
  {
    std::ofstream out(path);
    out << "{\"step\":1,\"loss\":5.0}\n{\"step\":2,\"loss\":4.0}\n{\"step\":2,\"val_bpb\":6.1}\n"
        << "{\"step\":3,\"loss\":3.5}\n{\"step\":4,\"loss\":3.0}\nnot json\n{\"step\":5,\"lo";
  }
  {
    mb::train::MetricsLog log(path, 2);  // resumed from the checkpoint of step 2
    log.write("{\"step\":3,\"loss\":3.4}");
  }
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  REQUIRE(lines.size() == 4);
  CHECK(lines[0] == "{\"step\":1,\"loss\":5.0}");
  CHECK(lines[2] == "{\"step\":2,\"val_bpb\":6.1}");
  CHECK(lines[3] == "{\"step\":3,\"loss\":3.4}");

  // A fresh log (no file yet) starts empty; an unwritable place is an error naming it.
  const fs::path fresh = tmp.path / "fresh.jsonl";
  {
    mb::train::MetricsLog log(fresh, 0);
    log.write("{\"step\":1}");
  }
  CHECK(fs::file_size(fresh) == std::string("{\"step\":1}\n").size());
  CHECK(contains(
      error_of([&] { mb::train::MetricsLog log(tmp.path / "no" / "such" / "m.jsonl", 0); }),
      "cannot open the metrics log"));
}
