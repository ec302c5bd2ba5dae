#include "core/error.hpp"

#include <cstring>

namespace mb {

namespace {
std::string compose(const std::string& where, const std::string& what, const std::string& hint) {
  std::string s = where.empty() ? what : where + ": " + what;
  if (!hint.empty()) s += " (hint: " + hint + ")";
  return s;
}
}  // namespace

Error::Error(std::string where, std::string what, std::string hint)
    : std::runtime_error(compose(where, what, hint)),
      where_(std::move(where)),
      what_(std::move(what)),
      hint_(std::move(hint)) {}

std::string errno_text(int err) { return std::strerror(err); }

}  // namespace mb
