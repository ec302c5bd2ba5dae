// embedding_forward / embedding_backward against plain loops and finite differences.
#include "check.hpp"

#include "cpu/embedding.hpp"

#include <stdexcept>

using namespace mb::kernels::cpu;

namespace {

template <class T>
std::vector<T> ref_embedding(const std::vector<std::int32_t>& ids, const std::vector<T>& table,
                             int C) {
  std::vector<T> out;
  for (auto id : ids)
    for (int i = 0; i < C; ++i) out.push_back(table[static_cast<std::size_t>(id) * C + i]);
  return out;
}

std::vector<std::int32_t> random_ids(int N, int V, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> dist(0, V - 1);
  std::vector<std::int32_t> ids(N);
  for (auto& id : ids) id = dist(gen);
  return ids;
}

}  // namespace

TEST_CASE("embedding forward and backward against the reference and finite differences") {
  const int N = 23, C = 5, V = 7;  // N > V: ids repeat, so rows accumulate
  auto ids = random_ids(N, V, 1);
  ids[0] = 0;
  ids[1] = V - 1;
  auto table = kt::random_floats(static_cast<std::size_t>(V) * C, 2);
  std::vector<float> out(static_cast<std::size_t>(N) * C, 9.0f);
  embedding_forward(out.data(), ids.data(), table.data(), N, C, V);
  auto td = kt::to_double(table);
  kt::check_close(out, ref_embedding(ids, td, C), 0.0, 0.0, "embedding out");

  auto g = kt::random_floats(out.size(), 3);
  auto d0 = kt::random_floats(table.size(), 4);
  auto d = d0;
  embedding_backward(d.data(), g.data(), ids.data(), N, C, V);
  auto num = kt::numeric_grad(td, [&](const std::vector<double>& t) {
    return kt::weighted_sum(ref_embedding(ids, t, C), g);
  });
  for (std::size_t i = 0; i < num.size(); ++i) num[i] += d0[i];
  kt::check_close(d, num, 1e-5, 1e-5, "embedding dtable");
}

TEST_CASE("embedding backward: rows sharing an id are added in row order on any thread count") {
  // Large enough to run in parallel; sums in a fixed order must be bit-identical to a
  // sequential loop that adds rows in increasing n.
  const int N = 4096, C = 64, V = 259;
  auto ids = random_ids(N, V, 10);
  for (int n = 0; n < N; n += 3) ids[n] = 32;  // a heavily shared id
  auto g = kt::random_floats(static_cast<std::size_t>(N) * C, 11);
  std::vector<float> d(static_cast<std::size_t>(V) * C, 0.0f), want(d.size(), 0.0f);
  embedding_backward(d.data(), g.data(), ids.data(), N, C, V);
  for (int n = 0; n < N; ++n)
    for (int i = 0; i < C; ++i)
      want[static_cast<std::size_t>(ids[n]) * C + i] += g[static_cast<std::size_t>(n) * C + i];
  CHECK(d == want);
}

TEST_CASE("embedding: ids outside [0, V) are rejected before anything is written") {
  const int C = 2, V = 3;
  std::vector<float> table(V * C, 1.0f), out(2 * C, 7.0f), d(V * C, 0.0f), g(2 * C, 1.0f);
  std::vector<std::int32_t> bad_hi{0, 3}, bad_lo{-1, 0};
  CHECK_THROWS_AS(embedding_forward(out.data(), bad_hi.data(), table.data(), 2, C, V),
                  std::out_of_range);
  CHECK_THROWS_AS(embedding_backward(d.data(), g.data(), bad_lo.data(), 2, C, V),
                  std::out_of_range);
  CHECK(out == std::vector<float>(2 * C, 7.0f));
  CHECK(d == std::vector<float>(V * C, 0.0f));
}
