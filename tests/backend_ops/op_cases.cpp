// The op table (op_cases.hpp). Shapes and tolerances come from the per-op GPU tests this table
// replaced; each family states its tolerances and why, as those tests did.
#include "op_cases.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <sstream>
#include <utility>

#include "cpu/bf16.hpp"

namespace mb::backend_ops {

using backend::Backend;
using backend::DeviceMemory;
using backend::Op;
using backend::Operand;
using backend::Precision;

namespace {

namespace bf16 = mb::kernels::cpu;  // the host's rounding (bf16_bits), to make bf16 operands

using Outputs = std::vector<std::vector<double>>;

// --- inputs -----------------------------------------------------------------------------------

// The kernel tests' random inputs (tests/kernels/check.hpp, kt::random_floats): uniform in
// [lo, hi) from a fixed seed.
std::vector<float> uniform(std::size_t n, std::uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

std::vector<float> nans(std::size_t n) {
  return std::vector<float>(n, std::numeric_limits<float>::quiet_NaN());
}

std::vector<std::int32_t> random_ids(int n, int V, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> dist(0, V - 1);
  std::vector<std::int32_t> ids(static_cast<std::size_t>(n));
  for (auto& id : ids) id = dist(gen);
  return ids;
}

std::vector<std::uint16_t> patterns_of(const std::vector<float>& v) {
  std::vector<std::uint16_t> p(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) p[i] = bf16::bf16_bits(v[i]);
  return p;
}

std::size_t sz(long a, long b = 1, long c = 1, long d = 1) {
  return static_cast<std::size_t>(a) * static_cast<std::size_t>(b) * static_cast<std::size_t>(c) *
         static_cast<std::size_t>(d);
}

// --- device buffers ---------------------------------------------------------------------------

// Device memory holding a host vector `off` elements into it: off = 1 hands the ops pointers
// aligned to their element only, as operands inside a larger buffer are.
template <class T>
class Buf {
 public:
  Buf(Backend& b, const std::vector<T>& host, std::size_t off = 0)
      : b_(&b), n_(host.size()), off_(off), mem_(b, (host.size() + off) * sizeof(T)) {
    if (n_ + off_ == 0) return;
    std::vector<T> padded(n_ + off_, T{});
    std::copy(host.begin(), host.end(), padded.begin() + static_cast<std::ptrdiff_t>(off_));
    b.upload(mem_.get(), padded.data(), padded.size() * sizeof(T));
  }
  T* p() const { return n_ + off_ ? mem_.as<T>() + off_ : nullptr; }
  std::vector<T> host() const {
    std::vector<T> all(n_ + off_);
    if (!all.empty()) b_->download(all.data(), mem_.get(), all.size() * sizeof(T));
    return std::vector<T>(all.begin() + static_cast<std::ptrdiff_t>(off_), all.end());
  }
  // The values as doubles (exact for every T used here).
  std::vector<double> get() const {
    const auto h = host();
    return std::vector<double>(h.begin(), h.end());
  }

 private:
  Backend* b_;
  std::size_t n_, off_;
  DeviceMemory mem_;
};

// a - b element by element: exactly 0 where the two are the same fp32 values.
std::vector<double> minus(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> d(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  return d;
}

std::vector<double> scalar(double x) { return {x}; }

// --- the table being built --------------------------------------------------------------------

OutputSpec out(std::string name, std::size_t size, Tolerance t) {
  return {std::move(name), size, t, false};
}
// An output that is exactly 0 on every backend (a difference of two runs on one device).
OutputSpec zero(std::string name, std::size_t size) {
  return {std::move(name), size, Tolerance::exact(), true};
}

struct Table {
  std::vector<OpCase> cases;
  std::uint32_t seed = 1;  // each row its own inputs
  void add(Op op, std::string shape, Precision p, std::vector<OutputSpec> outputs,
           std::function<RunResult(Backend&)> run) {
    cases.push_back({op, std::move(shape), p, std::move(outputs), std::move(run)});
  }
  std::uint32_t next_seed() { return seed += 10; }
};

std::string dims(std::initializer_list<std::pair<const char*, long>> d) {
  std::string s;
  for (const auto& [name, v] : d) {
    if (!s.empty()) s += ' ';
    s += std::string(name) + "=" + std::to_string(v);
  }
  return s;
}

std::string decimal(float x) {
  std::ostringstream os;
  os << x;
  return os.str();
}

// --- embedding --------------------------------------------------------------------------------
// Exact, both directions. The forward copies table rows. The backward adds, for each table
// element, dout of the rows with that id in increasing n, starting from the existing value, on
// both sides (the CPU's counting sort keeps rows in order, the GPU's ordered compaction too):
// the same fp32 additions in the same order.
void add_embedding(Table& t) {
  // N = 1; N not a multiple of the 256-id chunks; C = 1, and C > 256 (several column tiles,
  // the last partial); V of the byte vocabulary with padding ids.
  const std::array<int, 3> shapes[] = {
      {1, 1, 1}, {1, 7, 5}, {23, 5, 7}, {1000, 64, 259}, {5000, 300, 259}};
  for (const std::array<int, 3>& nvc : shapes) {
    const int N = nvc[0], C = nvc[1], V = nvc[2];  // not a binding: lambdas capture them
    const std::string shape = dims({{"N", N}, {"C", C}, {"V", V}});
    const std::uint32_t s = t.next_seed();
    t.add(Op::embedding_forward, shape, Precision::fp32, {out("out", sz(N, C), Tolerance::exact())},
          [=](Backend& b) {
            Buf<std::int32_t> ids(b, random_ids(N, V, s));
            Buf<float> table(b, uniform(sz(V, C), s + 1)), o(b, nans(sz(N, C)));
            b.embedding_forward(o.p(), ids.p(), table.p(), N, C, V);
            return RunResult{{o.get()}, {}};
          });
    t.add(Op::embedding_backward, shape, Precision::fp32,
          {out("dtable", sz(V, C), Tolerance::exact())}, [=](Backend& b) {
            auto host_ids = random_ids(N, V, s + 2);
            for (int n = 0; n < N; n += 3) host_ids[static_cast<std::size_t>(n)] = V / 2;  // shared
            Buf<std::int32_t> ids(b, host_ids);
            Buf<float> g(b, uniform(sz(N, C), s + 3)), d(b, uniform(sz(V, C), s + 4));
            b.embedding_backward(d.p(), g.p(), ids.p(), N, C, V);
            return RunResult{{d.get()}, {}};
          });
  }
}

// --- layernorm --------------------------------------------------------------------------------
// fp32 row reductions over C values and column reductions over N rows, summed in different
// orders by the two twins:
// - out, mean, rstd: 1e-4 relative + 1e-5 absolute. Inputs sit around an offset of 3, so the
//   mean carries an absolute error of a few ulp of 3 (~1e-6), which reaches out multiplied by
//   rstd (~1.7) and the weights (<= 1.5).
// - dinp: 1e-4 relative + 1e-5 · max(1, largest rstd) absolute. dinp is rstd times a
//   difference of O(1) terms, each rounded (or fused) differently on the two sides; for C = 1
//   the row has zero variance, rstd = 1/sqrt(eps) ~ 316, and the true dinp of 0 comes out as
//   316 times the rounding error of dout · weight.
// - dweight, dbias: sums over N rows: 1e-4 relative to the largest column sum (scaled).
// The backward's mean and rstd are computed here on the host, the same inputs for both twins.
constexpr float kLayernormEps = 1e-5f;

struct LayernormStats {
  std::vector<float> mean, rstd;
};

LayernormStats layernorm_stats(const std::vector<float>& x, int N, int C) {
  LayernormStats st{std::vector<float>(sz(N)), std::vector<float>(sz(N))};
  for (int n = 0; n < N; ++n) {
    const float* row = x.data() + sz(n, C);
    double m = 0.0, var = 0.0;
    for (int c = 0; c < C; ++c) m += row[c];
    m /= C;
    for (int c = 0; c < C; ++c) var += (row[c] - m) * (row[c] - m);
    var /= C;
    st.mean[sz(n)] = static_cast<float>(m);
    st.rstd[sz(n)] = static_cast<float>(1.0 / std::sqrt(var + kLayernormEps));
  }
  return st;
}

void add_layernorm(Table& t) {
  // C = 1 (zero variance), C below, at and above the warp width, a wide row; N not a multiple
  // of the 8 rows per block nor of the 16-row tasks; N > 256 · 16 for full tasks.
  const std::array<int, 2> shapes[] = {{1, 1}, {1, 33}, {5, 32}, {13, 257}, {67, 1024}, {4133, 48}};
  const auto stats = Tolerance::close(1e-4, 1e-5);
  for (const std::array<int, 2>& nc : shapes) {
    const int N = nc[0], C = nc[1];  // not a structured binding: lambdas capture them (clang 14)
    const std::string shape = dims({{"N", N}, {"C", C}});
    const std::size_t n = sz(N, C);
    const std::uint32_t s = t.next_seed();
    t.add(Op::layernorm_forward, shape, Precision::fp32,
          {out("out", n, stats), out("mean", sz(N), stats), out("rstd", sz(N), stats),
           out("out, mean and rstd null", n, stats)},
          [=](Backend& b) {
            Buf<float> x(b, uniform(n, s, 2.0f, 4.0f)), w(b, uniform(sz(C), s + 1, 0.5f, 1.5f)),
                bias(b, uniform(sz(C), s + 2));
            Buf<float> o(b, nans(n)), mean(b, nans(sz(N))), rstd(b, nans(sz(N))), o2(b, nans(n));
            b.layernorm_forward(o.p(), mean.p(), rstd.p(), x.p(), w.p(), bias.p(), N, C,
                                kLayernormEps);
            b.layernorm_forward(o2.p(), nullptr, nullptr, x.p(), w.p(), bias.p(), N, C,
                                kLayernormEps);
            return RunResult{{o.get(), mean.get(), rstd.get(), o2.get()}, {}};
          });

    const std::uint32_t sb = t.next_seed();
    // The dinp bound needs the largest rstd: the same inputs the run makes.
    const auto host_stats = layernorm_stats(uniform(n, sb, 2.0f, 4.0f), N, C);
    double max_rstd = 1.0;
    for (float r : host_stats.rstd) max_rstd = std::max(max_rstd, static_cast<double>(r));
    const auto dinp_tol = Tolerance::close(1e-4, 1e-5 * max_rstd);
    t.add(
        Op::layernorm_backward, shape, Precision::fp32,
        {out("dinp", n, dinp_tol), out("dweight", sz(C), Tolerance::scaled(1e-4)),
         out("dbias", sz(C), Tolerance::scaled(1e-4)), out("dinp alone", n, dinp_tol),
         out("dweight alone", sz(C), Tolerance::scaled(1e-4)),
         out("dbias alone", sz(C), Tolerance::scaled(1e-4))},
        [=](Backend& b) {
          const auto hx = uniform(n, sb, 2.0f, 4.0f);
          const auto st = layernorm_stats(hx, N, C);
          Buf<float> x(b, hx), w(b, uniform(sz(C), sb + 1, 0.5f, 1.5f)), g(b, uniform(n, sb + 2));
          Buf<float> mean(b, st.mean), rstd(b, st.rstd);
          const auto dinp0 = uniform(n, sb + 3), dw0 = uniform(sz(C), sb + 4),
                     db0 = uniform(sz(C), sb + 5);
          Buf<float> dinp(b, dinp0), dw(b, dw0), db(b, db0);
          b.layernorm_backward(dinp.p(), dw.p(), db.p(), g.p(), x.p(), w.p(), mean.p(), rstd.p(), N,
                               C);
          Buf<float> dinp1(b, dinp0), dw1(b, dw0), db1(b, db0);
          b.layernorm_backward(dinp1.p(), nullptr, nullptr, g.p(), x.p(), w.p(), mean.p(), rstd.p(),
                               N, C);
          b.layernorm_backward(nullptr, dw1.p(), nullptr, g.p(), x.p(), w.p(), mean.p(), rstd.p(),
                               N, C);
          b.layernorm_backward(nullptr, nullptr, db1.p(), g.p(), x.p(), w.p(), mean.p(), rstd.p(),
                               N, C);
          return RunResult{{dinp.get(), dw.get(), db.get(), dinp1.get(), dw1.get(), db1.get()}, {}};
        });
  }
}

// --- bf16 conversions -------------------------------------------------------------------------
// Exact: to_bf16 is bit-identical to the CPU's rounding for every non-NaN input (NaN inputs,
// whose patterns the hardware need not match, are tested in tests/gpu/test_matmul_bf16.cpp);
// from_bf16 widens every pattern, NaNs included, to the same bits (compared as bit patterns).
// Each output buffer has one more element than n, which must keep its fill.
void add_conversions(Table& t) {
  auto to_bf16_row = [&t](std::string shape, std::vector<float> src) {
    const std::size_t n = src.size();
    t.add(Op::to_bf16, std::move(shape), Precision::fp32, {out("dst", n + 1, Tolerance::exact())},
          [src = std::move(src), n](Backend& b) {
            Buf<float> s(b, src);
            Buf<std::uint16_t> d(b, std::vector<std::uint16_t>(n + 1, 0xABCDu));
            b.to_bf16(d.p(), s.p(), n);
            return RunResult{{d.get()}, {}};
          });
  };
  // ±0, exact bf16 values, ties both ways, near the top, ±inf, denormals, the smallest normal.
  const std::uint32_t special[] = {
      0x00000000u, 0x80000000u, 0x3F800000u, 0xC0200000u, 0x3F808000u, 0x3F818000u, 0xBF808000u,
      0xBF818000u, 0x3F808001u, 0x3F807FFFu, 0x3FFF8000u, 0x7F7F0000u, 0x7F7F7FFFu, 0x7F7F8000u,
      0x7F7FFFFFu, 0xFF7FFFFFu, 0x7F800000u, 0xFF800000u, 0x00010000u, 0x00018000u, 0x00008000u,
      0x00008001u, 0x007FFFFFu, 0x80000001u, 0x807FFFFFu, 0x00800000u};
  std::vector<float> sv;
  for (std::uint32_t u : special) sv.push_back(std::bit_cast<float>(u));
  to_bf16_row("special values", sv);
  to_bf16_row("n=1", {0.3f});
  // Random 32-bit patterns (every exponent, denormals and inf; NaNs made finite), a quarter of
  // them exact ties, then values in [-1, 1] (the operands' usual range).
  std::mt19937 gen(77);
  std::vector<float> rnd(std::size_t{1} << 20);
  for (std::size_t i = 0; i < rnd.size(); ++i) {
    std::uint32_t u = static_cast<std::uint32_t>(gen());
    if (i % 4 == 0) u = (u & 0xFFFF0000u) | 0x8000u;
    if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x007FFFFFu) != 0) u &= ~0x40000000u;
    rnd[i] = std::bit_cast<float>(u);
  }
  const auto uni = uniform(std::size_t{1} << 18, 78);
  rnd.insert(rnd.end(), uni.begin(), uni.end());
  to_bf16_row("random bits n=1310720", std::move(rnd));

  for (std::size_t n : {std::size_t{1}, std::size_t{65536} * 3 + 7}) {
    t.add(Op::from_bf16, dims({{"n", static_cast<long>(n)}}), Precision::fp32,
          {out("dst bits", n + 1, Tolerance::exact())}, [n](Backend& b) {
            std::vector<std::uint16_t> src(n);
            for (std::size_t i = 0; i < n; ++i) src[i] = static_cast<std::uint16_t>(i * 40503u);
            Buf<std::uint16_t> s(b, src);
            // A NaN no widening produces (its low half is not 0): float bits, moved as such.
            Buf<std::uint32_t> d(b, std::vector<std::uint32_t>(n + 1, 0x7FBADBADu));
            b.from_bf16(reinterpret_cast<float*>(d.p()), s.p(), n);
            return RunResult{{d.get()}, {}};
          });
  }
}

// --- bias + activation ------------------------------------------------------------------------
// - ReLU forward and dinp: exact. v = inp + bias is one fp32 addition on both sides, max(v, 0)
//   and dout · [v > 0] are exact, and dinp += g is one more addition.
// - GELU forward: 1e-5 relative + 2e-6 absolute. The GPU uses tanhf (about 1e-7 absolute error
//   near |t| = 1), the CPU tanh_approx (below 2.5e-7, tests/kernels/test_simd.cpp), and
//   0.5 · v · (1 + t) carries their difference times |v| / 2 <= 2 for |v| <= 4 here: at most
//   ~7.4e-7, which matters where gelu(v) itself is tiny (v near -4).
// - GELU dinp: 1e-5 relative + 1e-5 absolute: gelu' scales the difference in t by up to ~10.
// - dbias (both): column sums of N values in different orders: 1e-4 relative to the largest
//   column sum (scaled); for GELU plus N · 4e-6, the summed worst-case difference of gelu'.
// - From the pre-activation's bf16 patterns only (Operand::patterns, as a bf16 model saves it):
//   the same tolerances against the CPU reading the same patterns, and on each device exactly
//   its result at the rounded fp32 values (widening bf16 is exact, the arithmetic after it the
//   same).
// - Each destination alone: against the CPU's, with the same tolerances.
using ActForward = void (Backend::*)(float*, const float*, const float*, int, int);
using ActBackward = void (Backend::*)(float*, float*, const float*, Operand, const float*, int,
                                      int);

void add_activations(Table& t) {
  // Not multiples of the 32-column tiles or of the 16-row tasks; N > 256 · 16 rows, so tasks
  // hold more than the minimum of rows; N = 1 and C = 1.
  const std::array<int, 2> shapes[] = {{1, 1}, {1, 257}, {7, 33}, {300, 65}, {4133, 40}};
  struct Act {
    bool gelu;
    Op fwd_op, bwd_op;
    ActForward fwd;
    ActBackward bwd;
  };
  const Act acts[] = {{true, Op::bias_gelu_forward, Op::bias_gelu_backward,
                       &Backend::bias_gelu_forward, &Backend::bias_gelu_backward},
                      {false, Op::bias_relu_forward, Op::bias_relu_backward,
                       &Backend::bias_relu_forward, &Backend::bias_relu_backward}};
  for (const Act& a : acts)
    for (const std::array<int, 2>& nc : shapes)
      for (bool with_bias : {true, false}) {
        const int N = nc[0], C = nc[1];  // not a structured binding: lambdas capture them
        const std::string shape = dims({{"N", N}, {"C", C}}) + (with_bias ? " bias" : " no bias");
        const std::size_t n = sz(N, C);
        const auto out_tol = a.gelu ? Tolerance::close(1e-5, 2e-6) : Tolerance::exact();
        const auto dinp_tol = a.gelu ? Tolerance::close(1e-5, 1e-5) : Tolerance::exact();
        const auto dbias_tol = Tolerance::scaled(1e-4, a.gelu ? N * 4e-6 : 0.0);
        const std::uint32_t s = t.next_seed();
        t.add(a.fwd_op, shape, Precision::fp32,
              {out("out", n, out_tol), out("out, in place", n, out_tol)},
              [=, fwd = a.fwd](Backend& b) {
                Buf<float> x(b, uniform(n, s, -3.0f, 3.0f)), bias(b, uniform(sz(C), s + 1));
                Buf<float> o(b, nans(n));
                const float* pb = with_bias ? bias.p() : nullptr;
                (b.*fwd)(o.p(), x.p(), pb, N, C);
                (b.*fwd)(x.p(), x.p(), pb, N, C);
                return RunResult{{o.get(), x.get()}, {}};
              });
        for (bool patterns : {false, true}) {
          std::vector<OutputSpec> outs = {out("dinp", n, dinp_tol), out("dbias", sz(C), dbias_tol),
                                          out("dinp alone", n, dinp_tol),
                                          out("dbias alone", sz(C), dbias_tol)};
          if (patterns) {
            outs.push_back(zero("dinp - dinp from the rounded values", n));
            outs.push_back(zero("dbias - dbias from the rounded values", sz(C)));
          }
          const std::uint32_t sb = t.next_seed();
          t.add(a.bwd_op, shape + (patterns ? " inp=patterns" : ""), Precision::fp32,
                std::move(outs), [=, bwd = a.bwd](Backend& b) {
                  const auto hx = uniform(n, sb, -3.0f, 3.0f);
                  std::vector<float> rounded(n);
                  for (std::size_t i = 0; i < n; ++i) rounded[i] = bf16::round_to_bf16(hx[i]);
                  Buf<float> x(b, hx), xr(b, rounded), bias(b, uniform(sz(C), sb + 1)),
                      g(b, uniform(n, sb + 2));
                  Buf<std::uint16_t> xp(b, patterns_of(hx));
                  const Operand inp = patterns ? Operand::patterns(xp.p()) : Operand(x.p());
                  const float* pb = with_bias ? bias.p() : nullptr;
                  // dinp is written (from NaN), dbias added to.
                  const auto dinp0 = nans(n), dbias0 = uniform(sz(C), sb + 4);
                  Buf<float> dinp(b, dinp0), dbias(b, dbias0), dinp1(b, dinp0), dbias1(b, dbias0);
                  (b.*bwd)(dinp.p(), dbias.p(), g.p(), inp, pb, N, C);
                  (b.*bwd)(dinp1.p(), nullptr, g.p(), inp, pb, N, C);
                  (b.*bwd)(nullptr, dbias1.p(), g.p(), inp, pb, N, C);
                  RunResult r{{dinp.get(), dbias.get(), dinp1.get(), dbias1.get()}, {}};
                  if (patterns) {
                    Buf<float> dinp2(b, dinp0), dbias2(b, dbias0);
                    (b.*bwd)(dinp2.p(), dbias2.p(), g.p(), Operand(xr.p()), pb, N, C);
                    r.outputs.push_back(minus(r.outputs[0], dinp2.get()));
                    r.outputs.push_back(minus(r.outputs[1], dbias2.get()));
                  }
                  return r;
                });
        }
      }
}

// --- residual ---------------------------------------------------------------------------------
// Exact: each output element is one IEEE fp32 addition on both sides (no product, so no fused
// multiply-add can change the rounding).
void add_residual(Table& t) {
  // Around the 256-thread block, and far beyond one grid pass of a single block.
  for (std::size_t n : {std::size_t{1}, std::size_t{255}, std::size_t{256}, std::size_t{257},
                        std::size_t{1000003}}) {
    const std::string shape = dims({{"n", static_cast<long>(n)}});
    const std::uint32_t s = t.next_seed();
    t.add(
        Op::residual_forward, shape, Precision::fp32,
        {out("out", n, Tolerance::exact()), out("out, in place (out = a)", n, Tolerance::exact())},
        [=](Backend& b) {
          Buf<float> a(b, uniform(n, s)), bb(b, uniform(n, s + 1)), o(b, nans(n));
          b.residual_forward(o.p(), a.p(), bb.p(), n);
          b.residual_forward(a.p(), a.p(), bb.p(), n);
          return RunResult{{o.get(), a.get()}, {}};
        });
    t.add(Op::residual_backward, shape, Precision::fp32,
          {out("da", n, Tolerance::exact()), out("db", n, Tolerance::exact()),
           out("da alone", n, Tolerance::exact())},
          [=](Backend& b) {
            const auto a0 = uniform(n, s + 3), b0 = uniform(n, s + 4);
            Buf<float> g(b, uniform(n, s + 2)), da(b, a0), db(b, b0), da1(b, a0);
            b.residual_backward(da.p(), db.p(), g.p(), n);
            b.residual_backward(da1.p(), nullptr, g.p(), n);
            b.residual_backward(nullptr, nullptr, g.p(), n);  // a no-op
            return RunResult{{da.get(), db.get(), da1.get()}, {}};
          });
  }
}

// --- dropout ----------------------------------------------------------------------------------
// Both twins draw the mask from the same inline functions of cpu/dropout.hpp.
// - forward: exact. Each element is inp · (keep · scale) with keep · scale either 0 or the same
//   fp32 scale: one rounding on both sides. Inputs are never 0, so this compares the masks
//   element by element (a kept/dropped disagreement is a 0 against a non-zero value).
// - backward: exact. dinp = dout · f + 0 rounds once, fused or not, and a dropped element is +0
//   on both sides; dinp starts as NaN, so an element left unwritten (or read) fails.
void add_dropout(Table& t) {
  struct Case {
    std::size_t n;
    float p;
    std::uint64_t seed, offset;
  };
  const Case cases[] = {
      {1, 0.5f, 1, 0},
      {257, 0.1f, 2, 0},
      {4099, 0.5f, 3, 12345},
      {1000003, 0.9f, 4, 7},
      {65536, 0.3f, 5, 1ull << 40},  // 64-bit element indices
      {1000, 0.0f, 6, 0},            // p = 0 is a copy
  };
  for (const Case& c : cases) {
    const std::string shape = dims({{"n", static_cast<long>(c.n)}}) + " p=" + decimal(c.p) +
                              " offset=" + std::to_string(c.offset);
    const std::uint32_t s = t.next_seed();
    t.add(Op::dropout_forward, shape, Precision::fp32,
          {out("out", c.n, Tolerance::exact()), out("out, in place", c.n, Tolerance::exact())},
          [=](Backend& b) {
            Buf<float> x(b, uniform(c.n, s, 0.5f, 1.5f)), o(b, nans(c.n));
            b.dropout_forward(o.p(), x.p(), c.n, c.p, c.seed, c.offset);
            b.dropout_forward(x.p(), x.p(), c.n, c.p, c.seed, c.offset);
            return RunResult{{o.get(), x.get()}, {}};
          });
  }
  for (float p : {0.0f, 0.25f, 0.75f})
    for (std::size_t n : {std::size_t{1}, std::size_t{300}, std::size_t{100001}}) {
      const std::uint32_t s = t.next_seed();
      t.add(Op::dropout_backward, dims({{"n", static_cast<long>(n)}}) + " p=" + decimal(p),
            Precision::fp32, {out("dinp (written over NaN)", n, Tolerance::exact())},
            [=](Backend& b) {
              const std::uint64_t seed = 99, offset = 5;
              Buf<float> g(b, uniform(n, s)), d(b, nans(n));
              b.dropout_backward(d.p(), g.p(), n, p, seed, offset);
              return RunResult{{d.get()}, {}};
            });
    }
}

// --- optimizer --------------------------------------------------------------------------------
// - adamw_step: 1e-5 relative + 1e-7 absolute on params, m and v, after each of two steps. The
//   formula is the same fp32 sequence (bias corrections computed on the host identically), but
//   either side may fuse a multiply-add, and m can cancel to near 0 (the absolute term, ~1 ulp
//   of 0.1). The second step starts from each device's own first step: its m and v differ by
//   a few ulps, which moves the update lr · m̂ / sqrt(v̂) by far less than the bound.
//   With a bf16 copy of the parameters: on each device exactly the same step, and the copy
//   exactly the patterns of the new parameters.
// - grad_norm_squared: 1e-12 relative. Products of two floats are exact in double, and n double
//   additions in any order differ by far less.
// - clip_grad_norm: the norm to 1e-6 relative (it is rounded to float), the clipped gradients
//   to 1e-6 relative (the scale max_norm / norm may differ in its last bit); below max_norm the
//   gradients stay exactly as they were.
void add_optimizer(Table& t) {
  // Around the 256-thread block and the 65536-element chunks of the norm.
  const std::size_t sizes[] = {1, 257, 65535, 65536, 65537, 300007};
  const auto adam = Tolerance::close(1e-5, 1e-7);
  for (std::size_t n : sizes) {
    const std::string shape = dims({{"n", static_cast<long>(n)}});
    const std::uint32_t s = t.next_seed();
    t.add(Op::adamw_step, shape, Precision::fp32,
          {out("params, step 1", n, adam), out("m, step 1", n, adam), out("v, step 1", n, adam),
           out("params, step 2", n, adam), out("m, step 2", n, adam), out("v, step 2", n, adam),
           zero("params with a bf16 copy - params", n), zero("bf16 copy - bf16(params)", n)},
          [=](Backend& b) {
            const auto p0 = uniform(n, s);
            const std::vector<float> zeros(n, 0.0f);
            Buf<float> g1(b, uniform(n, s + 1)), g2(b, uniform(n, s + 2));
            Buf<float> p(b, p0), m(b, zeros), v(b, zeros), pc(b, p0), mc(b, zeros), vc(b, zeros);
            Buf<std::uint16_t> copy(b, std::vector<std::uint16_t>(n, 0xABCDu));
            RunResult r;
            for (long step = 1; step <= 2; ++step) {
              const float* g = step == 1 ? g1.p() : g2.p();
              b.adamw_step(p.p(), nullptr, g, m.p(), v.p(), n, step, 1e-2f, 0.9f, 0.999f, 1e-8f,
                           0.1f);
              b.adamw_step(pc.p(), copy.p(), g, mc.p(), vc.p(), n, step, 1e-2f, 0.9f, 0.999f, 1e-8f,
                           0.1f);
              r.outputs.push_back(p.get());
              r.outputs.push_back(m.get());
              r.outputs.push_back(v.get());
            }
            r.outputs.push_back(minus(pc.get(), r.outputs[3]));
            const auto params = pc.host();
            std::vector<double> rounded(n);
            for (std::size_t i = 0; i < n; ++i) rounded[i] = bf16::bf16_bits(params[i]);
            r.outputs.push_back(minus(copy.get(), rounded));
            return r;
          });
    t.add(Op::grad_norm_squared, shape, Precision::fp32,
          {out("sum of squares", 1, Tolerance::close(1e-12, 0.0))}, [=](Backend& b) {
            Buf<float> g(b, uniform(n, s + 3, -3.0f, 3.0f));
            return RunResult{{scalar(b.grad_norm_squared(g.p(), n))}, {}};
          });
    // max_norm: half the norm, so every gradient gets scaled by about 1/2.
    const auto g0 = uniform(n, s + 4);
    double sq = 0.0;
    for (float x : g0) sq += static_cast<double>(x) * x;
    const auto max_norm = static_cast<float>(0.5 * std::sqrt(sq));
    t.add(Op::clip_grad_norm, shape, Precision::fp32,
          {out("norm", 1, Tolerance::close(1e-6, 0.0)),
           out("clipped gradients", n, Tolerance::close(1e-6, 0.0)),
           out("norm, below max_norm", 1, Tolerance::close(1e-6, 0.0)),
           out("gradients below max_norm", n, Tolerance::exact())},
          [=](Backend& b) {
            Buf<float> g(b, g0), g2(b, g0);
            const float norm = b.clip_grad_norm(g.p(), n, max_norm);
            const float norm2 = b.clip_grad_norm(g2.p(), n, 4.0f * max_norm + 1.0f);
            return RunResult{{scalar(norm), g.get(), scalar(norm2), g2.get()}, {}};
          });
  }
}

// --- matrix products --------------------------------------------------------------------------
// out, dinp, dweight: |got - want| <= rel · (|want| + max |want| of the same output row).
// - fp32 (rel 1e-4): both sides are fp32 dot products of the same terms summed in different
//   orders (and blockings); with inputs in [-1, 1] and K up to 512 the rounding difference is a
//   few ulps of the row's magnitude (around 1e-6), far inside 1e-4. Not looser, because TF32
//   math (10-bit mantissa, about 5e-4 relative per product) would reach it on the larger shapes:
//   the CUDA side must stay true fp32 (CUBLAS_COMPUTE_32F).
// - bf16 (rel 1e-5): both sides round the same operands to bf16 with the same rule, and the
//   product of two bf16 values is exact in fp32, so both add exactly the same terms in fp32;
//   only the order differs (oneDNN's blocking, the tensor cores' k-blocks, whose internal
//   addition may truncate: a few ulps of the running sum per block), around 1e-6 of the row's
//   magnitude at K up to 515, while a missing rounding (or TF32) moves each product by up to
//   2^-8 relative, about 1e-3 of the row's magnitude. Operands given as bf16 patterns, as
//   values, or both (the patterns then being the rounded values): the same products.
// - dbias: 1e-5 relative to the largest entry (scaled): fp32 column sums of dout, in one
//   running sum on the CPU and as per-task partials on the GPU.
// - K = 0 (out = bias): exact. On each device: a second run gives the same bits, and each
//   gradient computed alone (the operands it does not need passed empty) the full call's bits.
// head_logits: the fp32 product whatever the backend's precision: rel 1e-4, as fp32 matmul (a
// bf16 product there would miss it by about 1e-3).
enum class Kind { values, patterns, both };
const char* kind_name(Kind k) {
  return k == Kind::values ? "values" : k == Kind::patterns ? "patterns" : "both";
}

struct MatmulRow {
  int M, K, N;
  bool bias;
  std::size_t off = 0, bias_off = 0;  // of every operand (and output); of the bias
  Kind inp = Kind::values, weight = Kind::values;
  bool step = false;  // matmul_step_forward (a generation step's product), forward only
};

// An operand as Kind k: its values, its patterns (at the same offset), or both.
struct DevOperand {
  Buf<float> values;
  Buf<std::uint16_t> patterns;
  Kind kind;
  DevOperand(Backend& b, const std::vector<float>& v, Kind k, std::size_t off)
      : values(b, v, off), patterns(b, patterns_of(v), off), kind(k) {}
  Operand op() const {
    if (kind == Kind::values) return Operand(values.p());
    if (kind == Kind::patterns) return Operand::patterns(patterns.p());
    return Operand(values.p(), patterns.p());
  }
};

void add_matmul_row(Table& t, Precision prec, const MatmulRow& r) {
  const int M = r.M, K = r.K, N = r.N;
  std::string shape = dims({{"M", M}, {"K", K}, {"N", N}}) + (r.bias ? " bias" : " no bias");
  if (r.off) shape += " off=" + std::to_string(r.off);
  if (r.bias_off) shape += " bias_off=" + std::to_string(r.bias_off);
  if (r.inp != Kind::values || r.weight != Kind::values)
    shape += std::string(" inp=") + kind_name(r.inp) + " weight=" + kind_name(r.weight);
  const double rel = prec == Precision::bf16 ? 1e-5 : 1e-4;
  const std::size_t nMK = sz(M, K), nNK = sz(N, K), nMN = sz(M, N);
  const std::uint32_t s = t.next_seed();
  const auto forward = r.step ? &Backend::matmul_step_forward : &Backend::matmul_forward;
  t.add(r.step ? Op::matmul_step_forward : Op::matmul_forward, shape, prec,
        {out("out", nMN, K == 0 ? Tolerance::exact() : Tolerance::rows(rel, sz(N))),
         zero("out, second run - out", nMN)},
        [=](Backend& b) {
          DevOperand inp(b, uniform(nMK, s), r.inp, r.off),
              w(b, uniform(nNK, s + 1), r.weight, r.off);
          Buf<float> bias(b, uniform(sz(N), s + 2), r.bias_off);
          Buf<float> o(b, nans(nMN), r.off), o2(b, nans(nMN), r.off);
          const float* pb = r.bias ? bias.p() : nullptr;
          (b.*forward)(o.p(), inp.op(), w.op(), pb, M, K, N);
          (b.*forward)(o2.p(), inp.op(), w.op(), pb, M, K, N);
          auto got = o.get();
          auto again = minus(o2.get(), got);
          return RunResult{{std::move(got), std::move(again)}, {}};
        });
  if (r.step) return;
  // The fused product and ReLU: the two ops' bits on each device (and so matmul_forward's
  // tolerance across devices).
  t.add(Op::matmul_bias_relu_forward, shape, prec,
        {out("out", nMN, K == 0 ? Tolerance::exact() : Tolerance::rows(rel, sz(N))),
         zero("out, second run - out", nMN),
         zero("out - (matmul_forward without bias, then bias_relu_forward)", nMN)},
        [=](Backend& b) {
          DevOperand inp(b, uniform(nMK, s), r.inp, r.off),
              w(b, uniform(nNK, s + 1), r.weight, r.off);
          Buf<float> bias(b, uniform(sz(N), s + 2), r.bias_off);
          Buf<float> o(b, nans(nMN), r.off), o2(b, nans(nMN), r.off), two(b, nans(nMN), r.off);
          const float* pb = r.bias ? bias.p() : nullptr;
          b.matmul_bias_relu_forward(o.p(), inp.op(), w.op(), pb, M, K, N);
          b.matmul_bias_relu_forward(o2.p(), inp.op(), w.op(), pb, M, K, N);
          b.matmul_forward(two.p(), inp.op(), w.op(), nullptr, M, K, N);
          b.bias_relu_forward(two.p(), two.p(), pb, M, N);
          auto got = o.get();
          auto again = minus(o2.get(), got);
          auto separate = minus(got, two.get());
          return RunResult{{std::move(got), std::move(again), std::move(separate)}, {}};
        });
  // The product added in place: the two ops' bits on each device.
  t.add(Op::matmul_residual_forward, shape, prec,
        {out("out", nMN, K == 0 ? Tolerance::exact() : Tolerance::rows(rel, sz(N))),
         zero("out - (matmul_forward into a buffer, then residual_forward)", nMN)},
        [=](Backend& b) {
          DevOperand inp(b, uniform(nMK, s), r.inp, r.off),
              w(b, uniform(nNK, s + 1), r.weight, r.off);
          Buf<float> bias(b, uniform(sz(N), s + 2), r.bias_off);
          const auto start = uniform(nMN, s + 3);
          Buf<float> o(b, start, r.off), two(b, start, r.off), product(b, nans(nMN), r.off);
          const float* pb = r.bias ? bias.p() : nullptr;
          b.matmul_residual_forward(o.p(), inp.op(), w.op(), pb, M, K, N);
          b.matmul_forward(product.p(), inp.op(), w.op(), pb, M, K, N);
          b.residual_forward(two.p(), two.p(), product.p(), nMN);
          auto got = o.get();
          auto separate = minus(got, two.get());
          return RunResult{{std::move(got), std::move(separate)}, {}};
        });
  t.add(Op::matmul_backward, shape, prec,
        {out("dinp", nMK, Tolerance::rows(rel, sz(K))),
         out("dweight", nNK, Tolerance::rows(rel, sz(K))),
         out("dbias", sz(N), Tolerance::scaled(1e-5)), zero("dinp, second run - dinp", nMK),
         zero("dweight, second run - dweight", nNK), zero("dbias, second run - dbias", sz(N)),
         zero("dinp alone - dinp", nMK), zero("dweight alone - dweight", nNK),
         zero("dbias alone - dbias", sz(N))},
        [=](Backend& b) {
          DevOperand inp(b, uniform(nMK, s), r.inp, r.off),
              w(b, uniform(nNK, s + 1), r.weight, r.off);
          Buf<float> dout(b, uniform(nMN, s + 3), r.off);
          // dinp is written (from NaN: an element left unwritten, or one read, shows), the
          // parameters' gradients are added to.
          const auto dinp0 = nans(nMK), dw0 = uniform(nNK, s + 5), db0 = uniform(sz(N), s + 6);
          auto run = [&](bool di, bool dw, bool db) {
            Buf<float> gi(b, dinp0, r.off), gw(b, dw0, r.off), gb(b, db0, r.bias_off);
            // Only the operands each gradient needs: dinp reads the weight, dweight the input.
            b.matmul_backward(di ? gi.p() : nullptr, dw ? gw.p() : nullptr, db ? gb.p() : nullptr,
                              dout.p(), dw ? inp.op() : Operand(), di ? w.op() : Operand(), M, K,
                              N);
            return std::array<std::vector<double>, 3>{gi.get(), gw.get(), gb.get()};
          };
          auto full = run(true, true, true), again = run(true, true, true);
          const auto di = run(true, false, false), dw = run(false, true, false),
                     db = run(false, false, true);
          b.matmul_backward(nullptr, nullptr, nullptr, dout.p(), Operand(), Operand(), M, K, N);
          RunResult res;
          for (int i = 0; i < 3; ++i) res.outputs.push_back(full[static_cast<std::size_t>(i)]);
          for (std::size_t i = 0; i < 3; ++i) res.outputs.push_back(minus(again[i], full[i]));
          res.outputs.push_back(minus(di[0], full[0]));
          res.outputs.push_back(minus(dw[1], full[1]));
          res.outputs.push_back(minus(db[2], full[2]));
          return res;
        });
}

void add_matmul(Table& t) {
  const std::array<int, 3> fp32_shapes[] = {
      {1, 1, 1},       {37, 129, 65},  // odd everywhere
      {64, 256, 128},                  // aligned
      {300, 512, 259},                 // several dbias tasks; N the byte vocabulary + 3
      {3, 7, 1},                       // a single output column
      {1, 64, 33},                     // a single row
  };
  for (auto [M, K, N] : fp32_shapes) {
    for (bool bias : {true, false}) add_matmul_row(t, Precision::fp32, {M, K, N, bias});
    add_matmul_row(t, Precision::fp32, {M, K, N, true, 1, 1});  // aligned to 4 bytes only
  }
  for (bool bias : {true, false}) add_matmul_row(t, Precision::fp32, {5, 0, 3, bias});  // K = 0

  const std::array<int, 3> bf16_shapes[] = {
      {1, 1, 1},       {37, 129, 65},  // odd everywhere
      {64, 256, 128},                  // aligned: tensor-core friendly without padding
      {300, 515, 259},                 // bigger, odd; several dbias tasks
      {3, 7, 1},                       // a single output column
      {1, 64, 33},                     // a single row
      {130, 96, 200},                  // K and N multiples of 8, M not
  };
  for (auto [M, K, N] : bf16_shapes) {
    for (bool bias : {true, false}) add_matmul_row(t, Precision::bf16, {M, K, N, bias});
    add_matmul_row(t, Precision::bf16, {M, K, N, true, 0, 1});  // a bias not 16-byte aligned
    add_matmul_row(t, Precision::bf16, {M, K, N, true, 1, 1});  // every operand 4-byte aligned
  }
  for (bool bias : {true, false}) add_matmul_row(t, Precision::bf16, {5, 0, 3, bias});
  // Operands as a model holds them: weights with their bf16 copy (both), activations saved as
  // patterns only; patterns read in place where their rows are 16-byte aligned (K a multiple
  // of 8) and staged otherwise, including patterns aligned to 2 bytes only (off = 1).
  const std::array<int, 3> operand_shapes[] = {
      {33, 64, 48}, {7, 40, 130}, {33, 37, 48}, {37, 129, 65}};
  for (auto [M, K, N] : operand_shapes) {
    add_matmul_row(t, Precision::bf16, {M, K, N, true, 0, 0, Kind::patterns, Kind::patterns});
    add_matmul_row(t, Precision::bf16, {M, K, N, true, 0, 0, Kind::both, Kind::both});
    add_matmul_row(t, Precision::bf16, {M, K, N, false, 0, 0, Kind::patterns, Kind::both});
    add_matmul_row(t, Precision::bf16, {M, K, N, true, 1, 0, Kind::patterns, Kind::both});
  }

  // A generation step's products: one row per sequence, K and N of the models' layers with
  // tails (K % 16, N % 4), one large enough to be shared by threads.
  const std::array<int, 3> step_shapes[] = {{1, 1, 1}, {1, 512, 1536}, {3, 129, 67}, {4, 2048, 40}};
  for (Precision prec : {Precision::fp32, Precision::bf16})
    for (auto [M, K, N] : step_shapes)
      for (bool bias : {true, false}) {
        MatmulRow row{M, K, N, bias};
        row.step = true;
        add_matmul_row(t, prec, row);
      }

  const std::array<int, 3> head_shapes[] = {{1, 1, 1}, {37, 64, 259}, {300, 128, 260}};
  for (Precision prec : {Precision::fp32, Precision::bf16})
    for (const std::array<int, 3>& ndv : head_shapes) {
      const int Nr = ndv[0], D = ndv[1], V = ndv[2];  // not a binding: lambdas capture them
      const std::uint32_t s = t.next_seed();
      t.add(Op::head_logits, dims({{"N", Nr}, {"D", D}, {"V", V}}), prec,
            {out("logits", sz(Nr, V), Tolerance::rows(1e-4, sz(V)))}, [=](Backend& b) {
              Buf<float> h(b, uniform(sz(Nr, D), s)), E(b, uniform(sz(V, D), s + 1)),
                  logits(b, nans(sz(Nr, V)));
              b.head_logits(logits.p(), h.p(), E.p(), Nr, D, V);
              return RunResult{{logits.get()}, {}};
            });
    }
}

// --- causal attention -------------------------------------------------------------------------
// Inputs uniform in [-1.5, 1.5] (scores within about ±2.25·sqrt(d)), dout in [-1, 1]. The
// backend chooses the kernel (Backend::attention_kernel); the tolerances are those of the kernel
// the CPU backend chooses for the row, which a GPU chooses too (the CPU twin accepts the short
// attention's shapes an A100 or H100 does; a GPU with less shared memory takes the tiled fp32
// attention instead, under the same tolerances).
// - fp32 kernels (tiled, short): out 1e-4 relative + 1e-5 absolute: a softmax-weighted mean of
//   values <= 1.5 summed in different orders, with expf against exp_approx: a few ulps of 1.
//   lse 1e-5 relative + 1e-5 absolute: an exact fp32 max plus the log of a sum of at most T
//   terms in [0, 1]. The gradient, as its increment over a random non-zero start, 1e-4 relative
//   to the largest increment (scaled: at T = 1 dq and dk are rounding noise, a lone key having
//   dS = 0) plus 5e-7 absolute (the start, |x| < 1, adds up to one ulp of rounding per side).
// - tiled bf16 (tensor cores): the twin computes in fp32 from q, k, v rounded to bf16; the kernel
//   also rounds p, dout and dS to bf16 for its products, each by at most u = 2^-8 of itself.
//   out 1.2e-2 absolute (the weights move by at most 2u in all: 2u · 1.5), lse 5e-3 absolute
//   (log(1 + u)), the gradient 2e-2 of its largest increment plus 1e-3 (two or three roundings
//   per term, independent, so the sums stay well under 2u of the largest terms).
//   tests/kernels/test_attention_bf16.cpp replays the kernel's roundings on the CPU: at shapes
//   like these it stays several times inside the bounds.
// - On each device: out without lse the same bits as with it, and two backward runs the same.
// The backward's out and lse come from the CPU backend in the row's precision: the same inputs
// for both twins.
struct AttentionTolerances {
  Tolerance out, lse, grad;
};

AttentionTolerances attention_tolerances(backend::AttentionKernel k) {
  if (k == backend::AttentionKernel::tiled_bf16)
    return {Tolerance::close(0.0, 1.2e-2), Tolerance::close(0.0, 5e-3),
            Tolerance::scaled(2e-2, 1e-3)};
  return {Tolerance::close(1e-4, 1e-5), Tolerance::close(1e-5, 1e-5),
          Tolerance::scaled(1e-4, 5e-7)};
}

void add_attention_row(Table& t, Precision prec, int B, int T, int H, int d) {
  const std::size_t nqkv = sz(B, T, 3) * sz(H, d), nout = sz(B, T, H, d), nlse = sz(B, H, T);
  const auto kernel = backend::make_backend(backend::Device::cpu, prec)->attention_kernel(T, d);
  const auto tol = attention_tolerances(kernel);
  const std::string shape = dims({{"B", B}, {"T", T}, {"H", H}, {"d", d}});
  auto note = [T, d](const Backend& b) {
    return "kernel " + std::string(backend::attention_kernel_name(b.attention_kernel(T, d)));
  };
  const std::uint32_t s = t.next_seed();
  t.add(Op::causal_attention_forward, shape, prec,
        {out("out", nout, tol.out), out("lse", nlse, tol.lse), zero("out without lse - out", nout)},
        [=](Backend& b) {
          Buf<float> qkv(b, uniform(nqkv, s, -1.5f, 1.5f)), o(b, nans(nout)), lse(b, nans(nlse)),
              o2(b, nans(nout));
          b.causal_attention_forward(o.p(), lse.p(), qkv.p(), B, T, H, d);
          b.causal_attention_forward(o2.p(), nullptr, qkv.p(), B, T, H, d);
          auto got = o.get();
          auto again = minus(o2.get(), got);
          return RunResult{{std::move(got), lse.get(), std::move(again)}, note(b)};
        });
  t.add(Op::causal_attention_backward, shape, prec,
        {out("dqkv", nqkv, tol.grad), zero("dqkv, second run - dqkv", nqkv)}, [=](Backend& b) {
          const auto hqkv = uniform(nqkv, s, -1.5f, 1.5f);
          std::vector<float> ho(nout), hlse(nlse);
          backend::make_backend(backend::Device::cpu, prec)
              ->causal_attention_forward(ho.data(), hlse.data(), hqkv.data(), B, T, H, d);
          // dqkv is written (from NaN).
          Buf<float> qkv(b, hqkv), o(b, ho), lse(b, hlse), dout(b, uniform(nout, s + 1));
          Buf<float> g1(b, nans(nqkv)), g2(b, nans(nqkv));
          b.causal_attention_backward(g1.p(), dout.p(), o.p(), lse.p(), qkv.p(), B, T, H, d);
          b.causal_attention_backward(g2.p(), dout.p(), o.p(), lse.p(), qkv.p(), B, T, H, d);
          const auto got = g1.get();
          return RunResult{{got, minus(g2.get(), got)}, note(b)};
        });
}

void add_attention(Table& t) {
  // fp32, the short attention (T <= 256 where its shared memory fits): odd lengths, one warp of
  // keys and a key past it, the patch sizes (8 text, 32 audio, 192 images), the longest.
  for (int T : {1, 7, 8, 31, 32, 33, 192, 255, 256})
    for (int d : {8, 32, 64})
      for (int H : {1, 3}) add_attention_row(t, Precision::fp32, 2, T, H, d);
  // Heads that are not a warp multiple and the widest; the longest sequence it fits at d = 128
  // (backward: 159 KiB) and at d = 96.
  add_attention_row(t, Precision::fp32, 2, 33, 2, 128);
  add_attention_row(t, Precision::fp32, 1, 125, 2, 128);
  add_attention_row(t, Precision::fp32, 1, 65, 2, 33);
  add_attention_row(t, Precision::fp32, 2, 70, 1, 1);
  add_attention_row(t, Precision::fp32, 1, 177, 1, 96);
  // The local models' shapes, over more blocks than one wave: one block per (sequence, head),
  // 1024 and 600 blocks (text: P = 8, heads of 32; audio: P = 32, heads of 64).
  add_attention_row(t, Precision::fp32, 256, 8, 4, 32);
  add_attention_row(t, Precision::fp32, 75, 32, 8, 64);
  // fp32, the tiled attention: past 256 positions, or more shared memory than the short one
  // may use (T = 200 at d = 128).
  for (int T : {257, 300})
    for (int d : {8, 64})
      for (int H : {1, 3}) add_attention_row(t, Precision::fp32, 2, T, H, d);
  add_attention_row(t, Precision::fp32, 1, 200, 2, 128);
  add_attention_row(t, Precision::fp32, 1, 300, 2, 33);
  add_attention_row(t, Precision::fp32, 1, 300, 1, 1);
  // bf16, the tiled bf16 attention (T >= 64, heads a multiple of 16): T around its tiles (64
  // queries or keys per block, 64 keys per forward tile, 32 per backward tile), and every head
  // dimension it is built for.
  for (int T : {64, 65, 130, 300})
    for (int d : {16, 64, 128})
      for (int H : {1, 3}) add_attention_row(t, Precision::bf16, 2, T, H, d);
  for (int d = 16; d <= 128; d += 16) add_attention_row(t, Precision::bf16, 1, 97, 2, d);
  // bf16 below one tile, and heads the bf16 kernel does not take: the fp32 kernels.
  add_attention_row(t, Precision::bf16, 2, 7, 2, 64);
  add_attention_row(t, Precision::bf16, 2, 63, 3, 128);
  add_attention_row(t, Precision::bf16, 1, 100, 2, 33);
}

// --- attention_step ---------------------------------------------------------------------------
// 1e-5 relative + 2e-6 absolute: each output is a softmax-weighted mean of values in
// [-1.5, 1.5] over n <= 700 positions, summed in another order (vector lanes on the CPU, a
// block-wide tree on the GPU, expf against exp_approx): a few fp32 ulps of their magnitude.
// bf16 caches (Operand::patterns) are read at their exact values: the same tolerance against
// the CPU reading the same patterns. A second run gives the same bits.
// Caches as the generator keeps them ([n, H·d], stride H·d) or as a forward pass's qkv buffer
// ([n, 3, H, d], stride 3·H·d, keys at H·d and values at 2·H·d), each sequence's n + 3 rows
// apart; queries in rows of a [B, 3, H, d] buffer.
void add_attention_step(Table& t) {
  struct Case {
    int B, n, H, d;
    bool qkv_layout;
  };
  const Case fp32_cases[] = {
      {1, 1, 1, 1, false},  // one position: the output is that position's value
      {1, 1, 4, 16, false},   {1, 7, 2, 8, true},
      {1, 129, 8, 64, false},  // more positions than threads in the block
      {1, 700, 4, 128, true},  // the widest head
      {1, 33, 3, 100, false},  // d not a multiple of the warp
      {5, 1, 2, 16, false},   {3, 130, 4, 64, false},
      {4, 21, 3, 33, true},
  };
  const Case bf16_cases[] = {
      {1, 1, 2, 16, false}, {3, 130, 4, 64, false}, {2, 41, 2, 128, false}, {4, 21, 3, 32, true}};
  auto add = [&t](const Case& c, bool bf16_cache) {
    const std::size_t C = sz(c.H, c.d), stride = c.qkv_layout ? 3 * C : C,
                      batch_stride = sz(c.n + 3) * stride, q_stride = 3 * C;
    const std::size_t koff = c.qkv_layout ? C : 0, voff = c.qkv_layout ? 2 * C : 0;
    const std::size_t nout = sz(c.B) * C, nscores = sz(c.B, c.H, c.n);
    const std::uint32_t s = t.next_seed();
    t.add(Op::attention_step,
          dims({{"B", c.B}, {"n", c.n}, {"H", c.H}, {"d", c.d}}) +
              (c.qkv_layout ? " qkv layout" : " cache layout") +
              (bf16_cache ? " bf16 cache" : " fp32 cache"),
          bf16_cache ? Precision::bf16 : Precision::fp32,
          {out("out", nout, Tolerance::close(1e-5, 2e-6)), zero("out, second run - out", nout)},
          [=](Backend& b) {
            const auto hk = uniform(sz(c.B) * batch_stride, s + 1, -1.5f, 1.5f);
            const auto hv = uniform(sz(c.B) * batch_stride, s + 2, -1.5f, 1.5f);
            Buf<float> q(b, uniform(sz(c.B) * q_stride, s, -1.5f, 1.5f)), k(b, hk), v(b, hv);
            Buf<std::uint16_t> kp(b, patterns_of(hk)), vp(b, patterns_of(hv));
            const Operand K = bf16_cache ? Operand::patterns(kp.p() + koff) : Operand(k.p() + koff);
            const Operand V = bf16_cache ? Operand::patterns(vp.p() + voff) : Operand(v.p() + voff);
            Buf<float> o(b, nans(nout)), o2(b, nans(nout)), scores(b, nans(nscores));
            b.attention_step(o.p(), scores.p(), q.p(), K, V, c.B, c.n, c.H, c.d, q_stride, stride,
                             batch_stride);
            b.attention_step(o2.p(), scores.p(), q.p(), K, V, c.B, c.n, c.H, c.d, q_stride, stride,
                             batch_stride);
            auto got = o.get();
            auto again = minus(o2.get(), got);
            return RunResult{{std::move(got), std::move(again)}, {}};
          });
  };
  for (const Case& c : fp32_cases) add(c, false);
  for (const Case& c : bf16_cases) add(c, true);
}

// --- cross-entropy ----------------------------------------------------------------------------
// - row losses: 1e-4 relative + 1e-5 absolute. The logits come from different fp32 products
//   (cuBLAS against oneDNN: sums over D in different orders) and different exp/log (within
//   about 1 ulp each).
// - loss sum: 1e-5 relative (+ 1e-5 absolute, as doctest's Approx did): a double sum of those.
//   count: exact. On each device the sum without the losses buffer has the same bits.
// - dh, dE: products summed over V (dh) or N (dE) in different orders: 1e-4 relative to the
//   largest entry (scaled), also each computed alone.
// - rows V.. of dE (padding ids) and masked rows of dh: exact (untouched).
void add_crossentropy(Table& t) {
  struct Case {
    int N, D, V, Vtable;  // rows V..Vtable-1 of the table are padding ids, never classes
    double masked;        // fraction of rows with target -1
  };
  const Case cases[] = {
      {9, 5, 7, 10, 0.3},
      {1, 3, 4, 4, 0.0},        // N = 1
      {33, 17, 259, 260, 0.2},  // V of the byte vocabulary, not a warp multiple
      {5, 4, 6, 6, 1.0},        // every row masked: zero loss, no gradient
      // V = 300: the GPU holds 2^22 / 300 = 13981 rows of logits at once, so N = 14000 takes a
      // second, 19-row chunk (the CPU, at 2^18 / 300 = 873 rows, many more).
      {14000, 16, 300, 301, 0.1},
  };
  for (const Case& c : cases) {
    const int N = c.N, D = c.D, V = c.V;
    const std::uint32_t s = t.next_seed();
    std::vector<std::int32_t> targets(sz(N));
    {
      std::mt19937 gen(s + 2);
      std::uniform_int_distribution<int> cls(0, V - 1);
      std::uniform_real_distribution<double> u(0.0, 1.0);
      for (auto& x : targets) x = u(gen) < c.masked ? -1 : cls(gen);
      if (N >= 3 && c.masked < 1.0) {  // a masked row and both extreme classes
        targets[0] = -1;
        targets[1] = V - 1;
        targets[2] = 0;
      }
    }
    std::vector<std::size_t> masked_rows;
    for (int n = 0; n < N; ++n)
      if (targets[sz(n)] < 0) masked_rows.push_back(sz(n));
    const auto count = static_cast<long>(sz(N) - masked_rows.size());
    const float dloss = count > 0 ? 1.0f / static_cast<float>(count) : 1.0f;
    const std::size_t nh = sz(N, D), nE = sz(c.Vtable, D), classes = sz(V, D);
    const std::string shape = dims({{"N", N}, {"D", D}, {"V", V}, {"Vtable", c.Vtable}}) +
                              " masked=" + std::to_string(masked_rows.size());
    const auto sum_tol = Tolerance::close(1e-5, 1e-5);
    t.add(Op::crossentropy_forward, shape, Precision::fp32,
          {out("row losses", sz(N), Tolerance::close(1e-4, 1e-5)), out("loss sum", 1, sum_tol),
           out("count", 1, Tolerance::exact()), zero("loss sum without losses - loss sum", 1)},
          [=](Backend& b) {
            Buf<float> h(b, uniform(nh, s, -1.5f, 1.5f)), E(b, uniform(nE, s + 1, -1.5f, 1.5f));
            Buf<std::int32_t> tg(b, targets);
            Buf<float> losses(b, nans(sz(N)));
            const auto r = b.crossentropy_forward(losses.p(), h.p(), E.p(), tg.p(), N, D, V);
            const auto r2 = b.crossentropy_forward(nullptr, h.p(), E.p(), tg.p(), N, D, V);
            return RunResult{{losses.get(), scalar(r.loss), scalar(static_cast<double>(r.count)),
                              scalar(r2.loss - r.loss)},
                             {}};
          });
    t.add(Op::crossentropy_backward, shape, Precision::fp32,
          {out("dh", nh, Tolerance::scaled(1e-4)), out("dE", nE, Tolerance::scaled(1e-4)),
           out("dE padding rows", nE - classes, Tolerance::exact()),
           out("dh masked rows", masked_rows.size() * sz(D), Tolerance::exact()),
           out("loss sum", 1, sum_tol), out("count", 1, Tolerance::exact()),
           out("dh alone", nh, Tolerance::scaled(1e-4)),
           out("dE alone", nE, Tolerance::scaled(1e-4))},
          [=](Backend& b) {
            Buf<float> h(b, uniform(nh, s, -1.5f, 1.5f)), E(b, uniform(nE, s + 1, -1.5f, 1.5f));
            Buf<std::int32_t> tg(b, targets);
            const auto dh0 = uniform(nh, s + 3), dE0 = uniform(nE, s + 4);
            Buf<float> dh(b, dh0), dE(b, dE0), dh1(b, dh0), dE1(b, dE0);
            const auto r =
                b.crossentropy_backward(dh.p(), dE.p(), h.p(), E.p(), tg.p(), dloss, N, D, V);
            b.crossentropy_backward(dh1.p(), nullptr, h.p(), E.p(), tg.p(), dloss, N, D, V);
            b.crossentropy_backward(nullptr, dE1.p(), h.p(), E.p(), tg.p(), dloss, N, D, V);
            const auto gh = dh.get(), gE = dE.get();
            std::vector<double> masked;
            for (std::size_t n : masked_rows)
              masked.insert(masked.end(), gh.begin() + static_cast<std::ptrdiff_t>(n * sz(D)),
                            gh.begin() + static_cast<std::ptrdiff_t>((n + 1) * sz(D)));
            return RunResult{
                {gh, gE,
                 std::vector<double>(gE.begin() + static_cast<std::ptrdiff_t>(classes), gE.end()),
                 std::move(masked), scalar(r.loss), scalar(static_cast<double>(r.count)), dh1.get(),
                 dE1.get()},
                {}};
          });
  }
}

std::vector<OpCase> build() {
  Table t;
  add_embedding(t);
  add_layernorm(t);
  add_conversions(t);
  add_activations(t);
  add_residual(t);
  add_dropout(t);
  add_optimizer(t);
  add_matmul(t);
  add_attention(t);
  add_attention_step(t);
  add_crossentropy(t);
  return std::move(t.cases);
}

}  // namespace

const std::vector<OpCase>& op_cases() {
  static const std::vector<OpCase> cases = build();
  return cases;
}

std::string label(const OpCase& c) {
  return std::string(backend::op_name(c.op)) + " [" + c.shape + "] " +
         std::string(backend::precision_name(c.precision));
}

}  // namespace mb::backend_ops
