// parallel_for: every index once, split between threads where it is worth it, and outside
// OpenMP altogether where it is not (the point of it: no team of one thread per small call).
#include "check.hpp"

#include <omp.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "cpu/parallel.hpp"

using namespace mb::kernels::cpu;

namespace {

// Restores the thread count a test changed.
struct ThreadCount {
  int saved = omp_get_max_threads();
  ~ThreadCount() { omp_set_num_threads(saved); }
};

}  // namespace

TEST_CASE("parallel_for: a loop not worth threads runs in order on the caller, outside OpenMP") {
  ThreadCount restore;
  omp_set_num_threads(2);
  std::vector<int> order, levels;
  parallel_for(5, false, [&](int i) {
    order.push_back(i);
    levels.push_back(omp_get_level());  // 1 inside `#pragma omp parallel if (false)`
  });
  CHECK(order == std::vector<int>{0, 1, 2, 3, 4});
  CHECK(levels == std::vector<int>(5, 0));
  // One iteration, or one thread to run on: the same.
  levels.clear();
  parallel_for(1, true, [&](int) { levels.push_back(omp_get_level()); });
  omp_set_num_threads(1);
  parallel_for(4, true, [&](int) { levels.push_back(omp_get_level()); });
  CHECK(levels == std::vector<int>(5, 0));
  parallel_for(0, true, [&](int) { levels.push_back(-1); });
  CHECK(levels.size() == 5);
}

TEST_CASE("parallel_for: a loop worth threads shares its indices, each run exactly once") {
  ThreadCount restore;
  for (int threads : {2, 3}) {
    omp_set_num_threads(threads);
    for (std::int64_t count : {2, 7, 1000}) {
      std::vector<std::atomic<int>> runs(static_cast<std::size_t>(count));
      std::atomic<int> in_parallel{0};
      parallel_for(count, true, [&](std::int64_t i) {
        runs[static_cast<std::size_t>(i)]++;
        if (omp_in_parallel()) in_parallel++;
      });
      for (const auto& r : runs) REQUIRE(r.load() == 1);
      CHECK(in_parallel.load() == count);
    }
  }
}
