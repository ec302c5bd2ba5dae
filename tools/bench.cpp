// megabyte bench: measure this machine. For now, the dataset reader under the training
// sampler's access pattern; training, evaluation and sampling throughput come with the model.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "command.hpp"
#include "core/log.hpp"
#include "core/thread_pool.hpp"
#include "data/dataset.hpp"
#include "data/read_benchmark.hpp"

namespace mb::tools {

namespace {

struct BenchArgs {
  std::string dataset;
  std::string split = "train";
  std::uint64_t window = 8192;
  double seconds = 3.0;
  unsigned threads = 0;
  std::uint64_t cache = 512ull << 20;
  bool json = false;
};

int run_bench(const BenchArgs& a) {
  data::DatasetOptions opt;
  opt.cache_bytes = a.cache;
  data::Dataset ds = data::Dataset::open(a.dataset, opt);
  const data::SplitReader& split = ds.split(a.split);
  const unsigned threads = a.threads == 0 ? default_thread_count() : a.threads;
  // A short warm-up fills the frame cache, so the figure is the steady state. It also
  // refuses an empty split before anything is printed.
  (void)data::benchmark_random_windows(split, a.window, std::min(1.0, a.seconds / 3), threads, 1);
  char line[256];
  std::snprintf(line, sizeof line, "bench: reading random %llu-byte windows from %s (%s) on %u threads for %.1f s",
                static_cast<unsigned long long>(a.window), a.dataset.c_str(), a.split.c_str(), threads, a.seconds);
  log_info(line);
  const auto r = data::benchmark_random_windows(split, a.window, a.seconds, threads, 2);
  const double mbps = static_cast<double>(r.bytes) / r.seconds / 1e6;
  if (a.json) {
    nlohmann::json j{{"benchmark", "dataset-read"}, {"dataset", a.dataset}, {"split", a.split},
                     {"window_bytes", a.window}, {"threads", r.threads}, {"seconds", r.seconds},
                     {"windows", r.windows}, {"windows_per_second", r.windows_per_second()},
                     {"megabytes_per_second", mbps}};
    std::cout << j.dump(2) << "\n";
  } else {
    std::printf("dataset read: %.0f windows/s of %llu bytes (%.0f MB/s) on %u threads, %.1f s\n",
                r.windows_per_second(), static_cast<unsigned long long>(a.window), mbps, r.threads, r.seconds);
  }
  return kExitOk;
}

}  // namespace

RunFunction add_bench_command(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* sub = app.add_subcommand("bench", "Measure throughput on this machine (now: dataset reads)");
  sub->footer("\nExample:\n  megabyte bench --dataset data/dev/kjv.dataset --window 8192 -j 2\n\nSee megabyte-bench(1).");
  sub->add_option("--dataset", a->dataset, "Measure random-window reads from this dataset")->required();
  sub->add_option("--split", a->split, "The split to read")->capture_default_str();
  sub->add_option("--window", a->window, "Window length T in bytes")->check(CLI::Range(1, 1 << 30))->capture_default_str();
  sub->add_option("--seconds", a->seconds, "How long to measure")->check(CLI::Range(0.1, 3600.0))->capture_default_str();
  sub->add_option("-j,--threads", a->threads, "Reader threads (default: all hardware threads)");
  sub->add_option("--cache", a->cache, "Decompressed-frame cache size (K, M, G suffixes)")
      ->transform(CLI::AsSizeValue(false))->capture_default_str();
  sub->add_flag("--json", a->json, "Print as JSON");
  return [a] { return run_bench(*a); };
}

}  // namespace mb::tools
