// Checkpoints (megabyte-checkpoint(5) lists every tensor, its shape and paper symbol).
//
// A checkpoint is a directory RUNDIR/checkpoints/step-NNNNNNNN/ holding
//   model.safetensors      the weights (fp32), the resolved config (YAML) and the step in
//                          __metadata__; loadable by any safetensors reader
//   optimizer.safetensors  AdamW's moments (m.NAME, v.NAME) and, in __metadata__, the step and
//                          the data sampler's position: what an exact resume needs
// The directory is built under a temporary name and renamed into place when both files are on
// disk, so a checkpoint directory with its final name is always complete.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "model/config.hpp"
#include "model/parameters.hpp"

namespace mb::model {

inline constexpr const char* kCheckpointFormat = "megabyte-checkpoint";
inline constexpr int kCheckpointFormatVersion = 1;

struct TrainingState {
  std::int64_t step = 0;            // optimiser steps taken
  std::uint64_t sampler_epoch = 0;  // the sampler's position for the next window
  std::uint64_t sampler_index = 0;
  bool operator==(const TrainingState&) const = default;
};

// Writes RUNDIR/checkpoints/step-NNNNNNNN atomically and returns its path. m and v are laid out
// like params.values(). An existing checkpoint of the same step is replaced. `encoder`, the
// trained-on dataset's byte layout, is recorded in the metadata (data.image_size,
// data.image_patch_size, data.sample_rate), so that `sample` knows what files to write.
std::filesystem::path save_checkpoint(const std::filesystem::path& run_dir, const Config& config,
                                      const ParameterSet& params, const std::vector<float>& m,
                                      const std::vector<float>& v, const TrainingState& state,
                                      const data::EncoderParams* encoder = nullptr);

// Complete checkpoints of a run, oldest first (staging directories are ignored).
std::vector<std::filesystem::path> list_checkpoints(const std::filesystem::path& run_dir);

// Removes all but the newest `keep` checkpoints. Each is first renamed to a hidden name, so
// that a process killed while removing one leaves no step-NNNNNNNN directory half-removed.
void prune_checkpoints(const std::filesystem::path& run_dir, int keep);

// Puts RUNDIR/checkpoints back in order after a process was killed while it wrote, replaced
// or pruned a checkpoint: a replacement that was complete but not yet renamed into place
// takes its name, and every other hidden ".step-*" directory (a checkpoint being written,
// replaced or pruned) is removed. Returns what it did, one line each, for the log. Only the
// process that holds the run (train/run_directory.hpp) may call it: it would remove another
// live process's work in progress.
std::vector<std::string> recover_checkpoints(const std::filesystem::path& run_dir);

// What a user may name as a checkpoint: a run directory (its newest checkpoint), a checkpoint
// directory, or its model.safetensors. Returns the checkpoint directory; throws mb::Error if
// there is none.
std::filesystem::path resolve_checkpoint(const std::filesystem::path& path);

// The config and step stored in a checkpoint's model.safetensors (checksum verified when
// `verify`).
struct CheckpointInfo {
  Config config;
  std::int64_t step = 0;
  bool has_encoder = false;     // the dataset's layout was recorded (checkpoints since it was)
  data::EncoderParams encoder;  // its modality is config.data.modality
};
CheckpointInfo read_checkpoint_info(const std::filesystem::path& checkpoint_dir,
                                    bool verify = true);

// Everything `info --verify` checks: both files' data checksums, and that every tensor the
// model of the checkpoint's config has (weights, m., v.) is present, F32, of its shape, with
// nothing else in the files. Throws mb::Error naming the file and the tensor.
void verify_checkpoint(const std::filesystem::path& checkpoint_dir, const ParameterSet& params);

// Loads the weights into `params` (whose tensors must match the file's names and shapes).
void load_weights(const std::filesystem::path& checkpoint_dir, ParameterSet& params);

// The checks of load_weights from model.safetensors' header alone, its data unread: that it
// holds exactly the tensors of `params`, F32 and of their shapes. `params` may be a parameter
// table that is not allocated, so that a model is allocated only once the file is known to
// hold it: a checkpoint from elsewhere whose config describes a model larger than the file
// is refused before its config sizes any buffer.
void check_weights(const std::filesystem::path& checkpoint_dir, const ParameterSet& params);

// Loads the optimiser moments and the training state.
TrainingState load_optimizer_state(const std::filesystem::path& checkpoint_dir,
                                   const ParameterSet& params, std::vector<float>& m,
                                   std::vector<float>& v);

}  // namespace mb::model
