// What every fuzz target shares: the oracle and scratch files.
//
// The oracle: a target calls the library's real entry points on the input. An mb::Error is
// the library refusing bad input, as it must; any other exception is what `megabyte` would
// print as "internal error", so it is a bug and the target aborts, for libFuzzer to report.
// Crashes, leaks, hangs, huge allocations and sanitizer reports are caught by libFuzzer and
// the sanitizers themselves.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>

#include "core/error.hpp"

namespace mb::fuzz {

template <class Fn>
void expect_only_mb_errors(Fn&& fn) {
  try {
    fn();
  } catch (const mb::Error&) {
    // Bad input refused with a message: the expected outcome for most inputs.
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz: an exception other than mb::Error escaped: %s\n", e.what());
    std::abort();
  }
}

// A directory of this process's own (in /dev/shm where there is one: inputs are written
// to files many thousand times a second), removed at exit.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::filesystem::path base = std::filesystem::is_directory("/dev/shm")
                                     ? std::filesystem::path("/dev/shm")
                                     : std::filesystem::temp_directory_path();
    std::filesystem::path d = base / ("megabyte-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch_dir(), ec);
    });
    return d;
  }();
  return dir;
}

// Writes `bytes` to scratch_dir()/name and returns the path.
inline std::filesystem::path write_scratch(const std::string& name,
                                           std::span<const std::uint8_t> bytes) {
  const std::filesystem::path p = scratch_dir() / name;
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  return p;
}

}  // namespace mb::fuzz
