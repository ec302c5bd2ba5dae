// embedding_forward / embedding_backward: CUDA twin against the CPU.
//
// Tolerance: exact, both directions. The forward copies table rows. The backward adds, for
// each table element, dout of the rows with that id in increasing n, starting from the
// existing value, on both sides (the CPU's counting sort keeps rows in order; the GPU's
// ordered compaction does too): the same fp32 additions in the same order.
#include "gpu_check.hpp"

#include "cpu/embedding.hpp"
#include "cuda/embedding.cuh"

#include <random>
#include <stdexcept>

namespace cpu = mb::kernels::cpu;
namespace cuda = mb::kernels::cuda;

namespace {

std::vector<std::int32_t> random_ids(int N, int V, std::uint32_t seed) {
    std::mt19937 gen(seed);
    std::uniform_int_distribution<int> dist(0, V - 1);
    std::vector<std::int32_t> ids(N);
    for (auto& id : ids) id = dist(gen);
    return ids;
}

struct Shape {
    int N, C, V;
};

// N = 1; N not a multiple of the 256-id chunks; C = 1, and C > 256 (several column tiles,
// the last partial); V of the byte vocabulary with padding ids.
const Shape kShapes[] = {{1, 1, 1}, {1, 7, 5}, {23, 5, 7}, {1000, 64, 259}, {5000, 300, 259}};

}  // namespace

TEST_CASE("gpu embedding forward copies exactly the CPU's rows") {
    for (Shape s : kShapes) {
        CAPTURE(s.N);
        CAPTURE(s.C);
        const std::size_t n = static_cast<std::size_t>(s.N) * s.C;
        const auto ids = random_ids(s.N, s.V, 1);
        const auto table = kt::random_floats(static_cast<std::size_t>(s.V) * s.C, 2);
        std::vector<float> want(n);
        cpu::embedding_forward(want.data(), ids.data(), table.data(), s.N, s.C, s.V);

        auto di = gt::to_device(ids);
        auto dt = gt::to_device(table);
        auto out = gt::nan_buffer(n);
        cuda::embedding_forward(out.get(), di.get(), dt.get(), s.N, s.C, s.V);
        gt::check_equal(out.download(), want, "embedding out");
    }
}

TEST_CASE("gpu embedding backward: bit-identical to the CPU, shared ids in row order") {
    for (Shape s : kShapes) {
        CAPTURE(s.N);
        CAPTURE(s.C);
        auto ids = random_ids(s.N, s.V, 3);
        for (int n = 0; n < s.N; n += 3) ids[n] = s.V / 2;  // a heavily shared id
        const auto g = kt::random_floats(static_cast<std::size_t>(s.N) * s.C, 4);
        const auto d0 = kt::random_floats(static_cast<std::size_t>(s.V) * s.C, 5);
        auto want = d0;
        cpu::embedding_backward(want.data(), g.data(), ids.data(), s.N, s.C, s.V);
        REQUIRE(gt::differs(want, d0));

        auto di = gt::to_device(ids);
        auto dg = gt::to_device(g);
        auto d = gt::to_device(d0);
        cuda::embedding_backward(d.get(), dg.get(), di.get(), s.N, s.C, s.V);
        gt::check_equal(d.download(), want, "embedding dtable");
    }
}

TEST_CASE("gpu embedding: ids outside [0, V) are rejected before anything is written") {
    const int C = 2, V = 3;
    auto table = gt::to_device(std::vector<float>(V * C, 1.0f));
    auto out = gt::to_device(std::vector<float>(2 * C, 7.0f));
    auto d = gt::to_device(std::vector<float>(V * C, 0.0f));
    auto g = gt::to_device(std::vector<float>(2 * C, 1.0f));
    auto bad_hi = gt::to_device(std::vector<std::int32_t>{0, 3});
    auto bad_lo = gt::to_device(std::vector<std::int32_t>{-1, 0});
    CHECK_THROWS_AS(cuda::embedding_forward(out.get(), bad_hi.get(), table.get(), 2, C, V),
                    std::out_of_range);
    CHECK_THROWS_WITH_AS(cuda::embedding_backward(d.get(), g.get(), bad_lo.get(), 2, C, V),
                         "embedding_backward: id -1 at row 0 is outside [0, 3)",
                         std::out_of_range);
    gt::check_equal(out.download(), std::vector<float>(2 * C, 7.0f), "out untouched");
    gt::check_equal(d.download(), std::vector<float>(V * C, 0.0f), "dtable untouched");
}
