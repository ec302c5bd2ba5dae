#include "data/input_files.hpp"

#include <algorithm>
#include <filesystem>
#include <span>
#include <sstream>
#include <string_view>
#include <system_error>
#include <unordered_set>

#include "core/error.hpp"
#include "core/file_io.hpp"
#include "core/hash.hpp"
#include "data/encoders/registry.hpp"

namespace mb::data {

namespace fs = std::filesystem;

bool has_modality_extension(const std::string& path, Modality modality) {
  const std::span<const std::string_view> kept = encoder_for(modality).file_extensions();
  if (kept.empty()) return true;
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return std::find(kept.begin(), kept.end(), ext) != kept.end();
}

namespace {

bool hidden(const fs::path& p) {
  const std::string n = p.filename().string();
  return n.size() > 1 && n[0] == '.';
}

void walk_directory(const std::string& dir, Modality modality, std::vector<InputFile>& out) {
  std::vector<std::string> found;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::follow_directory_symlink, ec),
      end;
  if (ec) throw Error(dir, "cannot read directory: " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) throw Error(dir, "cannot read directory: " + ec.message());
    if (hidden(it->path())) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(ec)) continue;
    std::string p = it->path().string();
    if (has_modality_extension(p, modality)) found.push_back(std::move(p));
  }
  std::sort(found.begin(), found.end());
  for (auto& p : found) {
    std::string key = fs::path(p).lexically_relative(dir).generic_string();
    out.push_back({std::move(p), std::move(key)});
  }
}

}  // namespace

std::vector<std::string> read_path_list(std::istream& in) {
  std::vector<std::string> paths;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) paths.push_back(std::move(line));
  }
  return paths;
}

std::vector<std::string> read_path_list_file(const std::string& path) {
  const auto bytes = read_whole_file(path);
  std::istringstream in(std::string(bytes.begin(), bytes.end()));
  return read_path_list(in);
}

std::vector<InputFile> list_inputs(const std::vector<std::string>& args, Modality modality,
                                   std::istream& list_input) {
  std::vector<std::string> named;
  for (const auto& a : args) {
    if (a == "-") {
      for (auto& p : read_path_list(list_input)) named.push_back(std::move(p));
    } else {
      named.push_back(a);
    }
  }
  std::vector<InputFile> files;
  for (const auto& p : named) {
    std::error_code ec;
    auto st = fs::status(p, ec);
    if (ec || !fs::exists(st)) throw Error(p, "no such file or directory", "check the path");
    if (fs::is_directory(st))
      walk_directory(p, modality, files);
    else
      files.push_back({p, p});
  }
  std::vector<InputFile> unique;
  std::unordered_set<std::string> seen;
  for (auto& f : files)
    if (seen.insert(f.path).second) unique.push_back(std::move(f));
  return unique;
}

std::vector<std::string> expand_inputs(const std::vector<std::string>& args, Modality modality,
                                       std::istream& list_input) {
  std::vector<std::string> paths;
  for (auto& f : list_inputs(args, modality, list_input)) paths.push_back(std::move(f.path));
  return paths;
}

std::vector<bool> assign_validation(const std::vector<std::string>& files, double val_fraction,
                                    const std::vector<std::string>& val_files) {
  std::vector<bool> val(files.size(), false);
  if (!val_files.empty()) {
    std::unordered_set<std::string> named(val_files.begin(), val_files.end());
    for (std::size_t i = 0; i < files.size(); ++i) val[i] = named.count(files[i]) > 0;
    return val;
  }
  if (val_fraction <= 0.0 || files.empty()) return val;
  // A hash of the path, mapped to [0, 1): the same file lands in the same split whatever
  // else is in the dataset.
  std::vector<double> u(files.size());
  for (std::size_t i = 0; i < files.size(); ++i)
    u[i] = static_cast<double>(xxh64(files[i], 0x6d65676162797465ull) >> 11) * 0x1.0p-53;
  std::size_t nval = 0;
  for (std::size_t i = 0; i < files.size(); ++i) nval += (val[i] = u[i] < val_fraction);
  if (files.size() >= 2 && nval == 0)
    val[static_cast<std::size_t>(std::min_element(u.begin(), u.end()) - u.begin())] = true;
  // Never leave train empty, not even with a single file.
  if (nval == files.size())
    val[static_cast<std::size_t>(std::max_element(u.begin(), u.end()) - u.begin())] = false;
  return val;
}

}  // namespace mb::data
