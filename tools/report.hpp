// How dataset summaries are printed by `prepare` and `info`: an aligned table for people,
// JSON for scripts.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

#include "data/manifest.hpp"

namespace mb::tools {

nlohmann::json dataset_json(const std::filesystem::path& dir, const data::Manifest& m);
std::string dataset_table(const std::filesystem::path& dir, const data::Manifest& m);

}  // namespace mb::tools
