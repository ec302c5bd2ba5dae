// Checking error messages in tests: what an mb::Error says, and whether it says something.
#pragma once

#include <doctest/doctest.h>

#include <string>

#include "core/error.hpp"

namespace mb::test {

inline bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// The message of the mb::Error that f throws, or "" (and a failed check) if it throws none.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const mb::Error& e) {
    return e.what();
  }
  FAIL_CHECK("no mb::Error was thrown");
  return "";
}

}  // namespace mb::test
