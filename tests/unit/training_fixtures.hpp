// What the tests of training's parts share: random documents, a small dataset written by the
// real writer, and the tiny MEGABYTE model of the brief.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.hpp"
#include "data/dataset.hpp"
#include "data/dataset_writer.hpp"
#include "model/config.hpp"
#include "model/model.hpp"
#include "temp_dir.hpp"

namespace mb::test {

using Bytes = std::vector<std::uint8_t>;

// Documents of the given sizes, random bytes (every value, 0 included), reproducible.
inline std::vector<Bytes> random_documents(const std::vector<std::size_t>& sizes,
                                           std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Bytes> docs;
  for (std::size_t n : sizes) {
    Bytes d(n);
    for (auto& b : d) b = static_cast<std::uint8_t>(rng());
    docs.push_back(std::move(d));
  }
  return docs;
}

// A dataset written by the real writer (small shards and frames, so that documents spread over
// several of each) with `train` and `validation` documents, opened.
struct SmallDataset {
  TempDir tmp;
  std::filesystem::path dir;
  std::vector<Bytes> train, validation;
  mb::data::Dataset dataset;

  SmallDataset(const char* name, std::vector<Bytes> train_docs, std::vector<Bytes> val_docs = {})
      : tmp(name),
        dir(tmp.path / "ds"),
        train(std::move(train_docs)),
        validation(std::move(val_docs)),
        dataset(write_and_open(dir, train, validation)) {}
  SmallDataset(const SmallDataset&) = delete;
  SmallDataset& operator=(const SmallDataset&) = delete;

  const mb::data::SplitReader& split(const char* name) const { return dataset.split(name); }

  static std::string doc_name(char split, std::size_t i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%c%zu", split, i);
    return buf;
  }

  static mb::data::Dataset write_and_open(const std::filesystem::path& dir,
                                          const std::vector<Bytes>& train,
                                          const std::vector<Bytes>& validation) {
    {
      mb::ThreadPool pool(2);
      mb::data::DatasetWriterOptions opt;
      opt.shard_bytes = 4000;
      opt.shard.frame_bytes = 256;
      mb::data::DatasetWriter w(dir, mb::data::EncoderParams{}, opt, pool);
      for (std::size_t i = 0; i < train.size(); ++i)
        w.add_document(mb::data::Split::train, doc_name('t', i), train[i]);
      for (std::size_t i = 0; i < validation.size(); ++i)
        w.add_document(mb::data::Split::validation, doc_name('v', i), validation[i]);
      w.commit();
    }
    return mb::data::Dataset::open(dir);
  }
};

inline std::uint64_t total_bytes(const std::vector<Bytes>& docs) {
  std::uint64_t n = 0;
  for (const auto& d : docs) n += d.size();
  return n;
}

// The tiny MEGABYTE of the brief: T = 16, P = 4, global {4, 1, 2}, local {8, 1, 2}.
inline mb::model::ModelConfig tiny_model_config() {
  mb::model::ModelConfig c;
  c.kind = mb::model::ModelKind::megabyte;
  c.context = 16;
  c.patch_size = 4;
  c.global = {4, 1, 2};
  c.local = {8, 1, 2};
  return c;
}

inline std::unique_ptr<mb::model::Model> tiny_model(
    std::uint64_t seed, int max_batch = 2, mb::model::ModelConfig config = tiny_model_config()) {
  auto m = mb::model::make_model(config, max_batch);
  m->parameters().initialize(0.02f, seed);
  return m;
}

}  // namespace mb::test
