// One error type for everything a user can get wrong: it says what went wrong, where
// (a file, a file:line, a shard and offset, a config key) and what to do about it.
// Printed as one line by the program: "megabyte COMMAND: WHERE: WHAT (hint: HINT)".
#pragma once

#include <stdexcept>
#include <string>

namespace mb {

class Error : public std::runtime_error {
 public:
  Error(std::string where, std::string what, std::string hint = {});

  const std::string& where() const { return where_; }
  const std::string& message() const { return what_; }
  const std::string& hint() const { return hint_; }

 private:
  std::string where_, what_, hint_;
};

// strerror(errno) as a std::string, for messages about failed system calls.
std::string errno_text(int err);

}  // namespace mb
