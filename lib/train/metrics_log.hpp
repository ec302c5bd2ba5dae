// RUNDIR/metrics.jsonl: one JSON object per line, flushed as written, so that a crashed run
// keeps everything up to its last line and `jq`/pandas read it while training goes on.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

namespace mb::train {

class MetricsLog {
 public:
  // Opens for appending. When resuming from step `keep_through_step`, lines of later steps
  // (written after that checkpoint by the interrupted run) are dropped first, so the log reads
  // as if the run had never stopped.
  MetricsLog(const std::filesystem::path& path, std::int64_t keep_through_step);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  void write(const std::string& json_object);

 private:
  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
};

}  // namespace mb::train
