// The encoders of all modalities: the one place that lists them.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "data/encoders/encoder.hpp"

namespace mb::data {

// Every modality's encoder, in the order of the Modality enum.
std::span<const Encoder* const> all_encoders();
const Encoder& encoder_for(Modality m);
// Throws mb::Error naming `where` for a name no encoder has, listing the names.
const Encoder& encoder_named(std::string_view name, const std::string& where);

}  // namespace mb::data
