#include "core/log.hpp"

#include <cstdio>
#include <mutex>
#include <string>

namespace mb {

namespace {
Verbosity g_verbosity = Verbosity::normal;
std::string g_warning_prefix = "megabyte: warning: ";
std::mutex g_stderr_mutex;

void emit(std::string_view prefix, std::string_view line) {
  std::lock_guard lock(g_stderr_mutex);
  std::string s;
  s.reserve(prefix.size() + line.size() + 1);
  s.append(prefix).append(line).push_back('\n');
  std::fwrite(s.data(), 1, s.size(), stderr);
}
}  // namespace

void set_verbosity(Verbosity v) { g_verbosity = v; }
Verbosity verbosity() { return g_verbosity; }

void log_info(std::string_view line) {
  if (g_verbosity >= Verbosity::normal) emit("", line);
}
void log_verbose(std::string_view line) {
  if (g_verbosity >= Verbosity::verbose) emit("", line);
}
void log_warning(std::string_view line) {
  if (g_verbosity >= Verbosity::normal) emit(g_warning_prefix, line);
}
void set_command(std::string_view name) {
  g_warning_prefix = "megabyte " + std::string(name) + ": warning: ";
}

}  // namespace mb
