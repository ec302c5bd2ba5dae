#include "data/prepare.hpp"

#include <chrono>
#include <deque>
#include <future>
#include <optional>
#include <unordered_set>

#include "core/error.hpp"
#include "core/log.hpp"
#include "core/thread_pool.hpp"
#include "data/encoders/registry.hpp"
#include "data/input_files.hpp"

namespace mb::data {

namespace {

// The outcome of encoding one file: its bytes, or the error that stopped it.
struct Encoded {
  std::vector<std::uint8_t> bytes;
  std::optional<Error> error;
};

Encoded encode_or_capture(const std::string& path, const EncoderParams& params) {
  Encoded e;
  try {
    e.bytes = encoder_for(params.modality).encode_file(path, params);
  } catch (const Error& err) {
    e.error = err;
  } catch (const std::exception& err) {
    e.error = Error(path, err.what());
  }
  return e;
}

// A --val-files entry that names no input is almost always a typo or a different spelling
// of the path ("./a" for "a"); silently training on the would-be validation data is worse.
void check_val_files_are_inputs(const std::vector<std::string>& val_files,
                                const std::vector<std::string>& paths) {
  const std::unordered_set<std::string> inputs(paths.begin(), paths.end());
  std::size_t unknown = 0;
  std::string first;
  for (const auto& v : val_files)
    if (!inputs.count(v) && unknown++ == 0) first = v;
  if (unknown > 0)
    throw Error("--val-files",
                std::to_string(unknown) + " of its " + std::to_string(val_files.size()) +
                    " paths are not among the inputs, the first is '" + first + "'",
                "write each path exactly as prepare lists the inputs (as given, or as found under "
                "a directory)");
}

}  // namespace

PrepareReport prepare_dataset(const std::filesystem::path& out_dir,
                              const std::vector<InputFile>& files, const PrepareOptions& options,
                              const PrepareProgress& progress, const std::atomic<bool>* cancel) {
  const auto start = std::chrono::steady_clock::now();
  encoder_for(options.encoder.modality).check_options(options.encoder);
  if (files.empty())
    throw Error(out_dir.string(), "no input files", "name files or directories to prepare");
  std::vector<std::string> paths, keys;
  for (const auto& f : files) {
    paths.push_back(f.path);
    keys.push_back(f.split_key);
  }
  check_val_files_are_inputs(options.val_files, paths);
  // --val-files names paths as the user wrote them; the hash rule uses the split keys.
  const std::vector<bool> is_val = options.val_files.empty()
                                       ? assign_validation(keys, options.val_fraction, {})
                                       : assign_validation(paths, 0.0, options.val_files);

  ThreadPool pool(options.threads == 0 ? default_thread_count() : options.threads);
  DatasetWriter writer(out_dir, options.encoder, options.writer, pool);
  PrepareReport report;
  report.input_files = files.size();

  // Encode ahead of the writer by a bounded window, consume strictly in input order.
  const std::size_t window = 2 * static_cast<std::size_t>(pool.size()) + 2;
  std::deque<std::future<Encoded>> ahead;
  std::size_t next_submit = 0;
  std::uint64_t content = 0;
  for (std::size_t i = 0; i < files.size(); ++i) {
    while (next_submit < files.size() && ahead.size() < window) {
      const std::string& path = files[next_submit++].path;
      const EncoderParams params = options.encoder;
      ahead.push_back(pool.submit([path, params] { return encode_or_capture(path, params); }));
    }
    Encoded e = ahead.front().get();
    ahead.pop_front();
    if (cancel != nullptr && cancel->load())
      throw Error(out_dir.string(), "interrupted; nothing was written");
    if (e.error) {
      if (!options.skip_bad)
        throw Error(e.error->where(), e.error->message(),
                    "use --skip-bad to leave out files that cannot be read; nothing was written");
      log_warning("skipping " + std::string(e.error->what()));
      report.skipped.push_back({files[i].path, e.error->message()});
    } else {
      writer.add_document(is_val[i] ? Split::validation : Split::train, files[i].path, e.bytes);
      content += e.bytes.size();
    }
    if (progress) progress(i + 1, content);
  }
  report.manifest = writer.commit();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace mb::data
