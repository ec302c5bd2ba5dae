#include "data/read_benchmark.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "core/error.hpp"

namespace mb::data {

ReadBenchmarkResult benchmark_random_windows(const SplitReader& split, std::uint64_t window,
                                             double seconds, unsigned threads, std::uint64_t seed) {
  if (split.documents() == 0 || split.bytes() == 0)
    throw Error("split '" + split.name() + "'", "has no bytes to read",
                "measure another split with --split");
  // Cumulative sizes, so that a uniform byte position picks a document by its size.
  std::vector<std::uint64_t> ends(split.documents());
  std::uint64_t total = 0;
  for (std::uint64_t d = 0; d < split.documents(); ++d) ends[d] = (total += split.document_size(d));

  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> windows{0}, bytes{0};
  auto worker = [&](unsigned id) {
    std::mt19937_64 rng(seed + id);
    std::vector<std::uint8_t> buf(window);
    std::uint64_t n = 0, b = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      for (int k = 0; k < 64; ++k) {
        const std::uint64_t pos = rng() % total;
        const auto doc = static_cast<std::uint64_t>(
            std::upper_bound(ends.begin(), ends.end(), pos) - ends.begin());
        const std::uint64_t size = split.document_size(doc);
        const std::uint64_t len = std::min(window, size);
        const std::uint64_t start = size == len ? 0 : rng() % (size - len + 1);
        split.read(doc, start, std::span<std::uint8_t>(buf.data(), len));
        ++n;
        b += len;
      }
    }
    windows += n;
    bytes += b;
  };
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (unsigned i = 0; i < std::max(1u, threads); ++i) pool.emplace_back(worker, i);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : pool) t.join();
  ReadBenchmarkResult r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.windows = windows;
  r.bytes = bytes;
  r.threads = std::max(1u, threads);
  return r;
}

}  // namespace mb::data
