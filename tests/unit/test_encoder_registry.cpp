// The registry of encoders: every modality has one, its name round-trips through the
// registry and through dataset.yaml, and a name no encoder has is an error that lists them.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "error_of.hpp"
#include "data/encoders/registry.hpp"
#include "data/manifest.hpp"

using namespace mb::data;
using mb::test::contains;
using mb::test::error_of;

TEST_CASE("every modality has an encoder whose name round-trips") {
  for (Modality m : {Modality::text, Modality::image, Modality::audio}) {
    const Encoder& e = encoder_for(m);
    CAPTURE(std::string(e.name()));
    CHECK(e.modality() == m);
    CHECK(&encoder_named(e.name(), "test") == &e);
    CHECK(modality_name(m) == e.name());
    CHECK(parse_modality(e.name(), "test") == m);
  }
  CHECK(modality_name(Modality::text) == "text");
  CHECK(modality_name(Modality::image) == "image");
  CHECK(modality_name(Modality::audio) == "audio");
}

TEST_CASE("the registry lists each encoder once, in the order of the enum") {
  const auto all = all_encoders();
  REQUIRE(all.size() == 3);
  std::set<std::string> names;
  for (std::size_t i = 0; i < all.size(); ++i) {
    CHECK(static_cast<std::size_t>(all[i]->modality()) == i);
    CHECK(names.insert(std::string(all[i]->name())).second);
    CHECK(&encoder_for(all[i]->modality()) == all[i]);
  }
}

TEST_CASE("a name no encoder has is an error naming where and listing the names") {
  for (const char* bad : {"video", "", "Text", "text ", "images"}) {
    CAPTURE(bad);
    const std::string msg = error_of([&] { encoder_named(bad, "--modality"); });
    CHECK(contains(msg, "--modality"));
    CHECK(contains(msg, "unknown modality '" + std::string(bad) + "'"));
    CHECK(contains(msg, "use text, image or audio"));
    CHECK(contains(error_of([&] { parse_modality(bad, "data.modality"); }), "data.modality"));
  }
}

TEST_CASE("each encoder's parameters round-trip through dataset.yaml") {
  for (const Encoder* e : all_encoders()) {
    CAPTURE(std::string(e->name()));
    Manifest m;
    m.encoder.modality = e->modality();
    const Manifest back = Manifest::parse(m.to_yaml(), "dataset.yaml");
    CHECK(back.encoder.modality == e->modality());
    CHECK(back.to_yaml() == m.to_yaml());
    CHECK(e->describe(back.encoder).rfind(std::string(e->name()) + " (", 0) == 0);
    CHECK(e->output_extension().front() == '.');
  }
}

TEST_CASE("encoders name themselves with their article, record their own checkpoint keys") {
  CHECK(encoder_for(Modality::text).name_with_article() == "a text");
  CHECK(encoder_for(Modality::image).name_with_article() == "an image");
  CHECK(encoder_for(Modality::audio).name_with_article() == "an audio");
  std::set<std::string> keys;
  for (const Encoder* e : all_encoders()) {
    EncoderParams p;
    p.modality = e->modality();
    for (const RecordedParam& r : e->recorded_params(p)) {
      CHECK(r.key.rfind("data.", 0) == 0);
      CHECK(keys.insert(r.key).second);
    }
  }
  CHECK(encoder_for(Modality::text).is_text());
  CHECK_FALSE(encoder_for(Modality::image).is_text());
  CHECK(encoder_for(Modality::image).layout_patch_size(EncoderParams{}) == 12);
  CHECK(encoder_for(Modality::audio).layout_patch_size(EncoderParams{}) == 0);
}
