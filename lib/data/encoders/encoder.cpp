#include "data/encoders/encoder.hpp"

namespace mb::data {

std::string Encoder::name_with_article() const {
  const std::string n(name());
  const bool vowel = !n.empty() && std::string_view("aeiou").find(n[0]) != std::string_view::npos;
  return (vowel ? "an " : "a ") + n;
}

}  // namespace mb::data
