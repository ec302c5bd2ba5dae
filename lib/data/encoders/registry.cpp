#include "data/encoders/registry.hpp"

#include "core/error.hpp"
#include "data/encoders/audio.hpp"
#include "data/encoders/image.hpp"
#include "data/encoders/text.hpp"

namespace mb::data {

namespace {

// "text, image or audio"
std::string names_text() {
  const auto all = all_encoders();
  std::string s;
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (i > 0) s += i + 1 == all.size() ? " or " : ", ";
    s += all[i]->name();
  }
  return s;
}

}  // namespace

std::span<const Encoder* const> all_encoders() {
  static const Encoder* const encoders[] = {&text_encoder(), &image_encoder(), &audio_encoder()};
  return encoders;
}

const Encoder& encoder_for(Modality m) {
  for (const Encoder* e : all_encoders())
    if (e->modality() == m) return *e;
  throw Error("modality", "no encoder for modality " + std::to_string(static_cast<int>(m)),
              "every modality needs a line in lib/data/encoders/registry.cpp");
}

const Encoder& encoder_named(std::string_view name, const std::string& where) {
  for (const Encoder* e : all_encoders())
    if (e->name() == name) return *e;
  throw Error(where, "unknown modality '" + std::string(name) + "'", "use " + names_text());
}

std::string_view modality_name(Modality m) { return encoder_for(m).name(); }

Modality parse_modality(std::string_view name, const std::string& where) {
  return encoder_named(name, where).modality();
}

}  // namespace mb::data
