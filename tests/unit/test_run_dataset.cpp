// The record of a run's dataset (train/run_dataset.hpp): a dataset's fingerprint follows its
// bytes and splits, not its location; --resume accepts the recorded dataset (or a copy) and
// refuses another with a message naming both; a damaged record is an error naming the file.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "error_of.hpp"
#include "core/atomic_file.hpp"
#include "core/file_io.hpp"
#include "core/thread_pool.hpp"
#include "data/dataset.hpp"
#include "data/dataset_writer.hpp"
#include "temp_dir.hpp"
#include "train/run_dataset.hpp"

namespace fs = std::filesystem;
using namespace mb::data;
using mb::test::contains;
using mb::test::error_of;
using mb::test::TempDir;

namespace {

// A dataset of `docs` documents of `fill` bytes, the last one in validation when `val`.
void write_dataset(const fs::path& dir, int docs, char fill, bool val) {
  mb::ThreadPool pool(1);
  DatasetWriter w(dir, EncoderParams{}, DatasetWriterOptions{}, pool);
  for (int i = 0; i < docs; ++i) {
    const bool to_val = val && i == docs - 1;
    std::string name = "d";  // (not "d" + ...: GCC 12's false -Wrestrict)
    name += std::to_string(i);
    w.add_document(to_val ? Split::validation : Split::train, name,
                   std::vector<std::uint8_t>(100 + i, static_cast<std::uint8_t>(fill)));
  }
  w.commit();
}

}  // namespace

TEST_CASE("a dataset's fingerprint follows its bytes and splits, not where it lies") {
  TempDir tmp("run-dataset-fp");
  write_dataset(tmp.path / "a", 5, 'a', true);
  write_dataset(tmp.path / "same", 5, 'a', true);
  write_dataset(tmp.path / "bytes", 5, 'b', true);
  write_dataset(tmp.path / "split", 5, 'a', false);  // the same bytes, all in train
  const auto fp = [&](const char* name) { return Manifest::load(tmp.path / name).fingerprint(); };
  CHECK(fp("a") == fp("same"));
  CHECK(fp("a") != fp("bytes"));
  CHECK(fp("a") != fp("split"));
  fs::rename(tmp.path / "same", tmp.path / "moved");
  CHECK(fp("moved") == fp("a"));
}

TEST_CASE("a run's dataset record: the same dataset passes, another is refused") {
  TempDir tmp("run-dataset-check");
  write_dataset(tmp.path / "a", 5, 'a', true);
  write_dataset(tmp.path / "copy", 5, 'a', true);
  write_dataset(tmp.path / "other", 6, 'a', true);
  const fs::path run = tmp.path / "run";
  fs::create_directories(run);
  const Dataset a = Dataset::open(tmp.path / "a");

  CHECK_FALSE(mb::train::check_run_dataset(run, a));  // no record yet: nothing checked
  mb::train::record_run_dataset(run, a);
  const auto bytes = mb::read_whole_file(run / mb::train::kRunDatasetFile);
  const std::string record(bytes.begin(), bytes.end());
  CHECK(contains(record, fs::absolute(tmp.path / "a").lexically_normal().string()));
  CHECK(mb::train::check_run_dataset(run, a));
  CHECK(mb::train::check_run_dataset(run, Dataset::open(tmp.path / "copy")));

  const std::string e =
      error_of([&] { mb::train::check_run_dataset(run, Dataset::open(tmp.path / "other")); });
  CHECK(contains(e, (tmp.path / "other").string()));
  CHECK(contains(e, "is not the dataset this run was trained on"));
  CHECK(contains(e, (tmp.path / "a").string()));
  CHECK(contains(e, "start a new run"));

  // A damaged record names the file and what is wrong.
  mb::write_file_atomic(run / mb::train::kRunDatasetFile, "dataset: x\nfingerprint: \"12z\"\n");
  const std::string bad = error_of([&] { mb::train::check_run_dataset(run, a); });
  CHECK(contains(bad, mb::train::kRunDatasetFile));
  CHECK(contains(bad, "fingerprint"));
  mb::write_file_atomic(run / mb::train::kRunDatasetFile,
                        "dataset: x\nfingerprnt: \"0123456789abcdef\"\n");
  CHECK(contains(error_of([&] { mb::train::check_run_dataset(run, a); }), "fingerprnt"));
}
