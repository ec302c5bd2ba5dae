#include "train/metrics_log.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "core/atomic_file.hpp"
#include "core/error.hpp"

namespace mb::train {

MetricsLog::MetricsLog(const std::filesystem::path& path, std::int64_t keep_through_step)
    : path_(path) {
  if (std::filesystem::exists(path)) {
    std::ifstream in(path);
    std::string line, kept;
    while (std::getline(in, line)) {
      const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      // A torn last line (a crash mid-write) is dropped with the lines of later steps.
      if (j.is_discarded() || !j.contains("step") || !j["step"].is_number_integer()) continue;
      if (j["step"].get<std::int64_t>() <= keep_through_step) kept += line + "\n";
    }
    write_file_atomic(path, kept);
  }
  file_ = std::fopen(path.c_str(), "a");
  if (!file_)
    throw Error(path.string(), "cannot open the metrics log: " + errno_text(errno),
                "check that the run directory is writable");
}

MetricsLog::~MetricsLog() {
  if (file_) std::fclose(file_);
}

void MetricsLog::write(const std::string& json_object) {
  if (std::fputs(json_object.c_str(), file_) < 0 || std::fputc('\n', file_) == EOF ||
      std::fflush(file_) != 0)
    throw Error(path_.string(), "cannot write the metrics log: " + errno_text(errno),
                "check the free space of the run directory");
}

}  // namespace mb::train
