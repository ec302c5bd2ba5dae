#include "core/progress.hpp"

#include <unistd.h>

#include <cstdio>

#include "core/log.hpp"

namespace mb {

using clock_type = std::chrono::steady_clock;

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1000.0 && u < 4) {
    bytes /= 1000.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

std::string human_duration(double seconds) {
  if (seconds < 0) seconds = 0;
  auto s = static_cast<long long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, (s / 60) % 60);
  else if (s >= 60)
    std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%llds", s);
  return buf;
}

std::string human_count(std::int64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

Progress::Progress(std::string label, std::uint64_t total_items, std::string item_name)
    : label_(std::move(label)),
      item_name_(std::move(item_name)),
      total_(total_items),
      start_(clock_type::now()),
      last_draw_(start_) {
  enabled_ = ::isatty(STDERR_FILENO) && verbosity() != Verbosity::quiet;
}

Progress::~Progress() { finish(); }

double Progress::seconds() const {
  return std::chrono::duration<double>(clock_type::now() - start_).count();
}

void Progress::update(std::uint64_t items_done, std::uint64_t bytes_done) {
  items_ = items_done;
  bytes_ = bytes_done;
  if (!enabled_) return;
  auto now = clock_type::now();
  if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  draw();
}

void Progress::draw() {
  double t = seconds();
  double rate = t > 0 ? static_cast<double>(bytes_) / t : 0.0;
  char line[256];
  int n;
  if (total_ > 0) {
    double frac = static_cast<double>(items_) / static_cast<double>(total_);
    std::string eta = (items_ > 0 && frac < 1.0) ? human_duration(t / frac - t) : "--";
    n = std::snprintf(line, sizeof line, "\r%s: %llu/%llu %s (%3.0f%%), %s, %s/s, ETA %s\x1b[K",
                      label_.c_str(), static_cast<unsigned long long>(items_),
                      static_cast<unsigned long long>(total_), item_name_.c_str(), 100.0 * frac,
                      human_bytes(static_cast<double>(bytes_)).c_str(), human_bytes(rate).c_str(),
                      eta.c_str());
  } else {
    n = std::snprintf(line, sizeof line, "\r%s: %llu %s, %s, %s/s\x1b[K", label_.c_str(),
                      static_cast<unsigned long long>(items_), item_name_.c_str(),
                      human_bytes(static_cast<double>(bytes_)).c_str(), human_bytes(rate).c_str());
  }
  if (n > 0) std::fwrite(line, 1, static_cast<std::size_t>(n), stderr);
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::finish() {
  if (enabled_ && drawn_) {
    std::fputs("\r\x1b[K", stderr);
    std::fflush(stderr);
  }
  drawn_ = false;
}

}  // namespace mb
