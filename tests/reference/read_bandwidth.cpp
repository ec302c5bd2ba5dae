// The machine's memory read bandwidth, for the bound on generation speed in README.md (each
// patch's global step reads the global stack's weights once). Sums a 1 GiB buffer, larger than
// any cache, with 8 independent AVX2 accumulators per thread, on 1 and on 2 threads; prints
// the best of 5 passes. Outside the build, like the rest of tests/reference/:
//   g++ -O3 -march=x86-64-v3 -fopenmp tests/reference/read_bandwidth.cpp -o /tmp/read_bandwidth
//   /tmp/read_bandwidth
#include <immintrin.h>
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>

int main() {
  const std::size_t n = std::size_t{1} << 28;  // floats: 1 GiB
  auto* a = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
  if (!a) return 1;
#pragma omp parallel for schedule(static)
  for (std::size_t i = 0; i < n; ++i) a[i] = 1.0f;  // touched by the threads that read it
  float sink = 0.0f;
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    double best = 1e30;
    for (int pass = 0; pass < 5; ++pass) {
      const auto t0 = std::chrono::steady_clock::now();
      float total = 0.0f;
#pragma omp parallel reduction(+ : total)
      {
        __m256 s[8];
        for (auto& v : s) v = _mm256_setzero_ps();
#pragma omp for schedule(static)
        for (std::size_t i = 0; i < n; i += 64)
          for (int j = 0; j < 8; ++j) s[j] = _mm256_add_ps(s[j], _mm256_load_ps(a + i + 8 * j));
        for (int j = 1; j < 8; ++j) s[0] = _mm256_add_ps(s[0], s[j]);
        float lanes[8];
        _mm256_storeu_ps(lanes, s[0]);
        for (float x : lanes) total += x;
      }
      const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (t < best) best = t;
      sink += total;
    }
    std::printf("read bandwidth, %d thread(s), 1 GiB buffer, best of 5: %.2f GB/s\n", threads,
                static_cast<double>(n * sizeof(float)) / best / 1e9);
  }
  std::free(a);
  return sink == 0.0f;  // the sums are used, so the reads are not optimised away
}
