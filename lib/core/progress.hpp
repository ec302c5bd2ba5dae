// A one-line progress display on stderr, redrawn in place. Like zstd's, it appears only
// when stderr is a terminal (and not -q), and it vanishes when the work is done, so logs
// and pipes never see carriage returns.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace mb {

class Progress {
 public:
  // `total_items` may be 0 when unknown. `item_name` names the counted things ("files").
  Progress(std::string label, std::uint64_t total_items, std::string item_name);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Record the total work done so far; redraws at most ~10 times a second.
  void update(std::uint64_t items_done, std::uint64_t bytes_done);
  // Erase the line.
  void finish();

  bool enabled() const { return enabled_; }
  double seconds() const;

 private:
  void draw();

  std::string label_, item_name_;
  std::uint64_t total_ = 0, items_ = 0, bytes_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool enabled_ = false, drawn_ = false;
};

// "1.2 MB", "340 kB": decimal units, as zstd prints them.
std::string human_bytes(double bytes);
// "1h02m", "3m05s", "12s".
std::string human_duration(double seconds);
// "1 byte", "3 bytes": a count with its noun, singular or plural as the count wants.
std::string human_count(std::int64_t n, const char* one, const char* many);

}  // namespace mb
