// What a training run records of its dataset: RUNDIR/trained-on.yaml names the dataset the
// run started on and its fingerprint (data::Manifest::fingerprint()), so that --resume can
// refuse another dataset, which would silently change what the resumed steps learn from.
// A copied or moved dataset has the same fingerprint and is accepted wherever it lies.
#pragma once

#include <filesystem>

#include "data/dataset.hpp"

namespace mb::train {

inline constexpr const char* kRunDatasetFile = "trained-on.yaml";

// Writes RUNDIR/trained-on.yaml for `dataset` (atomically; replacing an older record).
void record_run_dataset(const std::filesystem::path& run_dir, const data::Dataset& dataset);

// Checks `dataset` against RUNDIR/trained-on.yaml: an mb::Error naming both datasets when
// the fingerprints differ, or naming the file when it cannot be read. Returns false, having
// checked nothing, where the run has no record (one started by an older megabyte).
bool check_run_dataset(const std::filesystem::path& run_dir, const data::Dataset& dataset);

}  // namespace mb::train
