#include "model/checkpoint.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <string>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "data/encoders/registry.hpp"
#include "model/safetensors.hpp"

namespace mb::model {

namespace fs = std::filesystem;

namespace {

constexpr const char* kModelFile = "model.safetensors";
constexpr const char* kOptimizerFile = "optimizer.safetensors";
constexpr const char* kPrefix = "step-";

std::string step_dir_name(std::int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%08lld", kPrefix, static_cast<long long>(step));
  return buf;
}

// ".step-NNNNNNNN.SUFFIX": hidden, so never listed as a checkpoint. (Built with +=: GCC 12
// warns falsely, -Wrestrict, about "literal" + std::string.)
std::string hidden_name(std::int64_t step, const char* suffix) {
  std::string name = ".";
  name += step_dir_name(step);
  name += suffix;
  return name;
}

// The step of a complete checkpoint directory's name ("step-00000100"), or -1.
std::int64_t step_of(const fs::path& dir) {
  const std::string name = dir.filename().string();
  if (name.rfind(kPrefix, 0) != 0) return -1;
  const std::string digits = name.substr(std::string(kPrefix).size());
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) return -1;
  std::int64_t step = -1;
  std::from_chars(digits.data(), digits.data() + digits.size(), step);
  return step;
}

std::map<std::string, std::string> common_metadata(const Config& config, const TrainingState& s) {
  return {{"format", kCheckpointFormat},
          {"format_version", std::to_string(kCheckpointFormatVersion)},
          {"model_kind", std::string(model_kind_name(config.model.kind))},
          {"step", std::to_string(s.step)}};
}

const std::string& required(const SafetensorsFile& f, const std::string& key) {
  auto it = f.metadata().find(key);
  if (it == f.metadata().end())
    throw Error(f.path().string(), "metadata has no '" + key + "'",
                "this is not a megabyte checkpoint, or it is damaged; use another checkpoint");
  return it->second;
}

std::uint64_t metadata_u64(const SafetensorsFile& f, const std::string& key) {
  const std::string& text = required(f, key);
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size())
    throw Error(f.path().string(), "metadata '" + key + "' is not a number: '" + text + "'",
                "the checkpoint is damaged; use another checkpoint");
  return value;
}

void check_format(const SafetensorsFile& f) {
  if (required(f, "format") != kCheckpointFormat)
    throw Error(f.path().string(),
                "is not a megabyte checkpoint (format '" + required(f, "format") + "')",
                "name a checkpoint written by 'megabyte train'");
  if (metadata_u64(f, "format_version") != static_cast<std::uint64_t>(kCheckpointFormatVersion))
    throw Error(f.path().string(),
                "checkpoint format version " + required(f, "format_version") +
                    " is not supported (this megabyte reads version " +
                    std::to_string(kCheckpointFormatVersion) + ")",
                "use the megabyte release that wrote it");
}

}  // namespace

fs::path save_checkpoint(const fs::path& run_dir, const Config& config, const ParameterSet& params,
                         const std::vector<float>& m, const std::vector<float>& v,
                         const TrainingState& state, const data::EncoderParams* encoder) {
  const fs::path checkpoints = run_dir / "checkpoints";
  fs::create_directories(checkpoints);
  const fs::path target = checkpoints / step_dir_name(state.step);
  // A checkpoint of the same step (a run redone from an earlier one) is replaced only once
  // the new one is complete: it is moved aside first, and removed after the commit.
  fs::path replaced;
  if (fs::exists(target)) {
    replaced = checkpoints / hidden_name(state.step, ".replaced");
    fs::remove_all(replaced);
    fs::remove_all(checkpoints / hidden_name(state.step, ".new"));  // a crash's leftover
  }
  AtomicDirectory dir(replaced.empty() ? target : checkpoints / hidden_name(state.step, ".new"));

  std::vector<TensorRef> weights, moments;
  for (std::size_t i = 0; i < params.tensors().size(); ++i) {
    const ParamInfo& t = params.info(i);
    weights.push_back({t.name, t.shape, params.value(i)});
  }
  for (std::size_t i = 0; i < params.tensors().size(); ++i) {
    const ParamInfo& t = params.info(i);
    moments.push_back({"m." + t.name, t.shape, m.data() + t.offset});
    moments.push_back({"v." + t.name, t.shape, v.data() + t.offset});
  }
  auto meta = common_metadata(config, state);
  meta["config"] = config_to_yaml(config);
  if (encoder) {
    data::EncoderParams recorded = *encoder;
    const data::Encoder& e = data::encoder_for(encoder->modality);
    for (const data::RecordedParam& p : e.recorded_params(recorded))
      meta.insert_or_assign(p.key, std::to_string(*p.value));
  }
  auto optimizer_meta = common_metadata(config, state);
  optimizer_meta["sampler_epoch"] = std::to_string(state.sampler_epoch);
  optimizer_meta["sampler_index"] = std::to_string(state.sampler_index);
  try {
    write_safetensors(dir.staging() / kModelFile, weights, meta);
    write_safetensors(dir.staging() / kOptimizerFile, moments, optimizer_meta);
    dir.commit();
  } catch (const Error& e) {
    throw dir.public_error(e);  // (a full disk: the file of the checkpoint that did not fit)
  }
  if (!replaced.empty()) {
    fs::rename(target, replaced);
    fs::rename(dir.target(), target);
    fsync_directory(checkpoints);
    fs::remove_all(replaced);
  }
  return target;
}

std::vector<fs::path> list_checkpoints(const fs::path& run_dir) {
  std::vector<std::pair<std::int64_t, fs::path>> found;
  const fs::path checkpoints = run_dir / "checkpoints";
  std::error_code ec;
  if (!fs::is_directory(checkpoints, ec)) return {};
  for (const auto& entry : fs::directory_iterator(checkpoints)) {
    const std::int64_t step = step_of(entry.path());
    if (step >= 0 && entry.is_directory() && fs::exists(entry.path() / kModelFile) &&
        fs::exists(entry.path() / kOptimizerFile))
      found.emplace_back(step, entry.path());
  }
  std::sort(found.begin(), found.end());
  std::vector<fs::path> out;
  for (auto& [step, path] : found) out.push_back(path);
  return out;
}

void prune_checkpoints(const fs::path& run_dir, int keep) {
  const auto all = list_checkpoints(run_dir);
  for (std::size_t i = 0; i + static_cast<std::size_t>(keep) < all.size(); ++i) {
    const fs::path pruned = all[i].parent_path() / hidden_name(step_of(all[i]), ".pruned");
    fs::remove_all(pruned);
    fs::rename(all[i], pruned);
    fs::remove_all(pruned);
  }
}

std::vector<std::string> recover_checkpoints(const fs::path& run_dir) {
  const fs::path checkpoints = run_dir / "checkpoints";
  std::vector<std::string> done;
  std::error_code ec;
  if (!fs::is_directory(checkpoints, ec)) return done;
  std::vector<fs::path> hidden;
  for (const auto& entry : fs::directory_iterator(checkpoints))
    if (entry.path().filename().string().rfind(std::string(".") + kPrefix, 0) == 0)
      hidden.push_back(entry.path());
  std::sort(hidden.begin(), hidden.end());
  for (const fs::path& p : hidden) {
    // ".step-NNNNNNNN.new" was renamed into place whole (AtomicDirectory), so it is complete;
    // it lacks its final name only when save_checkpoint was killed between moving the
    // checkpoint it replaces aside and moving it in.
    const std::string name = p.filename().string();
    const std::string stem = name.substr(1, name.find('.', 1) - 1);  // "step-NNNNNNNN"
    if (name == "." + stem + ".new" && step_of(stem) >= 0 && !fs::exists(checkpoints / stem)) {
      fs::rename(p, checkpoints / stem);
      done.push_back("completed the replacement of " + (checkpoints / stem).string());
      continue;
    }
    fs::remove_all(p);
    done.push_back("removed " + p.string());
  }
  if (!done.empty()) fsync_directory(checkpoints);
  return done;
}

fs::path resolve_checkpoint(const fs::path& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    if (path.filename() == kOptimizerFile || path.filename() == kModelFile)
      return path.parent_path().empty() ? fs::path(".") : path.parent_path();
    throw Error(path.string(),
                "is a file but not a checkpoint's model.safetensors or optimizer.safetensors",
                "name a run directory, a checkpoint directory or one of its two files");
  }
  if (!fs::is_directory(path, ec))
    throw Error(path.string(), "no such checkpoint or run directory",
                "name a run directory written by 'megabyte train', or one of its checkpoints");
  if (fs::exists(path / kModelFile)) return path;
  const auto all = list_checkpoints(path);
  if (all.empty())
    throw Error(path.string(), "holds no complete checkpoint",
                "train longer (a checkpoint is written every train.checkpoint_every steps and "
                "at the end), or name another directory");
  return all.back();
}

CheckpointInfo read_checkpoint_info(const fs::path& checkpoint_dir, bool verify) {
  const SafetensorsFile f =
      SafetensorsFile::open(checkpoint_dir / kModelFile, verify ? SafetensorsFile::Checksum::verify
                                                                : SafetensorsFile::Checksum::skip);
  check_format(f);
  CheckpointInfo info;
  info.config =
      parse_config(required(f, "config"), (checkpoint_dir / kModelFile).string() + " (config)");
  info.step = static_cast<std::int64_t>(metadata_u64(f, "step"));
  info.encoder.modality = info.config.data.modality;
  const std::vector<data::RecordedParam> recorded =
      data::encoder_for(info.encoder.modality).recorded_params(info.encoder);
  if (!recorded.empty() && f.metadata().count(recorded.front().key)) {
    for (const data::RecordedParam& p : recorded)
      *p.value = static_cast<int>(metadata_u64(f, p.key));
    info.has_encoder = true;
  }
  return info;
}

void verify_checkpoint(const fs::path& checkpoint_dir, const ParameterSet& params) {
  struct Expect {
    const char* file;
    std::vector<std::string> prefixes;
  };
  for (const Expect& e : {Expect{kModelFile, {""}}, Expect{kOptimizerFile, {"m.", "v."}}}) {
    const SafetensorsFile f = SafetensorsFile::open(checkpoint_dir / e.file);  // checksum
    check_format(f);
    std::size_t expected = 0;
    for (const ParamInfo& t : params.tensors())
      for (const std::string& prefix : e.prefixes) {
        ++expected;
        const std::string name = prefix + t.name;
        const SafetensorsFile::Entry* entry = f.find(name);
        if (!entry || entry->dtype != "F32" || entry->shape != t.shape)
          throw Error(f.path().string() + ": tensor '" + name + "'",
                      !entry ? "is missing" : "is not an F32 tensor of the model's shape",
                      "the checkpoint does not match its own config: it is damaged; use another "
                      "checkpoint");
      }
    if (f.tensors().size() != expected)
      throw Error(f.path().string(),
                  "holds " + std::to_string(f.tensors().size()) +
                      " tensors, its config's model has " + std::to_string(expected),
                  "the checkpoint is damaged or not from this megabyte; use another checkpoint");
  }
}

namespace {

void check_weight_tensors(const SafetensorsFile& f, const ParameterSet& params) {
  check_format(f);
  if (f.tensors().size() != params.tensors().size())
    throw Error(f.path().string(),
                "holds " + std::to_string(f.tensors().size()) + " tensors, the model has " +
                    std::to_string(params.tensors().size()),
                "the checkpoint does not belong to this config");
  for (const ParamInfo& t : params.tensors()) f.check_f32(t.name, t.shape);
}

}  // namespace

void check_weights(const fs::path& checkpoint_dir, const ParameterSet& params) {
  check_weight_tensors(
      SafetensorsFile::open(checkpoint_dir / kModelFile, SafetensorsFile::Checksum::skip), params);
}

void load_weights(const fs::path& checkpoint_dir, ParameterSet& params) {
  const SafetensorsFile f = SafetensorsFile::open(checkpoint_dir / kModelFile);
  check_weight_tensors(f, params);
  for (std::size_t i = 0; i < params.tensors().size(); ++i) {
    const ParamInfo& t = params.info(i);
    f.read_f32(t.name, t.shape, params.value(i));
  }
}

TrainingState load_optimizer_state(const fs::path& checkpoint_dir, const ParameterSet& params,
                                   std::vector<float>& m, std::vector<float>& v) {
  const SafetensorsFile f = SafetensorsFile::open(checkpoint_dir / kOptimizerFile);
  check_format(f);
  m.assign(params.buffer_size(), 0.0f);
  v.assign(params.buffer_size(), 0.0f);
  for (std::size_t i = 0; i < params.tensors().size(); ++i) {
    const ParamInfo& t = params.info(i);
    f.read_f32("m." + t.name, t.shape, m.data() + t.offset);
    f.read_f32("v." + t.name, t.shape, v.data() + t.offset);
  }
  TrainingState s;
  s.step = static_cast<std::int64_t>(metadata_u64(f, "step"));
  s.sampler_epoch = metadata_u64(f, "sampler_epoch");
  s.sampler_index = metadata_u64(f, "sampler_index");
  return s;
}

}  // namespace mb::model
