// Rewrites a safetensors file (a checkpoint's model.safetensors or optimizer.safetensors) with
// the same tensors and its metadata changed by `edit`: how tests make a checkpoint whose header
// says something else than its writer did.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "model/safetensors.hpp"

namespace mb::test {

template <class Edit>
void rewrite_safetensors_metadata(const std::filesystem::path& file, Edit edit) {
  std::vector<std::vector<float>> data;
  std::vector<mb::model::TensorRef> refs;
  std::map<std::string, std::string> meta;
  {
    const auto f = mb::model::SafetensorsFile::open(file);
    meta = f.metadata();
    for (const auto& e : f.tensors()) {
      std::size_t n = 1;
      for (auto d : e.shape) n *= static_cast<std::size_t>(d);
      data.emplace_back(n);
      f.read_f32(e.name, e.shape, data.back().data());
    }
    for (std::size_t i = 0; i < f.tensors().size(); ++i)
      refs.push_back({f.tensors()[i].name, f.tensors()[i].shape, data[i].data()});
  }
  edit(meta);
  mb::model::write_safetensors(file, refs, meta);
}

}  // namespace mb::test
