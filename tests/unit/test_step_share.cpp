// How the ranks of a job share a step (train/step_share.hpp): every window of the step once,
// in order, at its place (micro-batch, row) in the config's micro-batches, never more than
// batch_size at once; a count of ranks that does not divide the step is refused, naming those
// that would.
#include <doctest/doctest.h>

#include <string>

#include "dist/job.hpp"
#include "dist/shard.hpp"
#include "error_of.hpp"
#include "train/step_share.hpp"

using mb::test::error_of;
using mb::train::share_step;

TEST_CASE("the ranks' shares cover the step's windows once, at their places") {
  for (int B : {1, 2, 3, 4}) {
    for (int A : {1, 2, 3}) {
      for (int N = 1; N <= B * A; ++N) {
        if ((B * A) % N != 0) continue;
        CAPTURE(B);
        CAPTURE(A);
        CAPTURE(N);
        int next = 0;
        for (int r = 0; r < N; ++r) {
          const auto s = share_step(B, A, N, r);
          CHECK(s.first_window == next);
          CHECK(s.windows == B * A / N);
          int w = s.first_window;
          for (const auto& p : s.parts) {
            CHECK(p.windows >= 1);
            CHECK(p.windows <= B);
            CHECK(p.micro == w / B);  // the config's micro-batch of the window
            CHECK(p.row == w % B);    // and its row there
            CHECK(p.row + p.windows <= B);
            w += p.windows;
          }
          CHECK(w == s.first_window + s.windows);
          next = w;
        }
        CHECK(next == B * A);
      }
    }
  }
  // One process: the config's micro-batches as they are.
  const auto one = share_step(4, 2, 1, 0);
  REQUIRE(one.parts.size() == 2);
  CHECK(one.parts[1].micro == 1);
  CHECK(one.parts[1].row == 0);
  CHECK(one.parts[1].windows == 4);
}

TEST_CASE("a step that the ranks cannot share equally is refused, naming the counts that work") {
  const std::string e = error_of([] { share_step(4, 2, 3, 0); });
  CHECK(e.find("cannot share a step of 8 windows") != std::string::npos);
  CHECK(e.find("start 1, 2, 4, 8 processes") != std::string::npos);
  CHECK_THROWS_AS(share_step(4, 2, 16, 0), mb::dist::AgreedError);
}

TEST_CASE("shards of a flat buffer: equal parts, the last ones shorter or empty") {
  const mb::dist::Sharding s(10, 4);  // parts of 3
  CHECK(s.part(0).begin == 0);
  CHECK(s.part(0).end == 3);
  CHECK(s.part(3).begin == 9);
  CHECK(s.part(3).end == 10);
  const mb::dist::Sharding tiny(2, 4);
  CHECK(tiny.part(2).size() == 0);
  CHECK(tiny.part(3).size() == 0);
  std::size_t total = 0;
  for (int r = 0; r < 4; ++r) total += s.part(r).size();
  CHECK(total == 10);
}

TEST_CASE("a job of one: nothing to join, and an agreed check throws its own error") {
  mb::dist::Job& job = mb::dist::Job::get();  // the tests run without a launcher
  CHECK(job.single());
  CHECK(job.rank() == 0);
  CHECK(job.who().empty());
  double x = 2.5;
  job.sum(&x, 1);
  CHECK(x == 2.5);
  CHECK_FALSE(job.any(false));
  CHECK(job.any(true));
  const std::string e =
      error_of([&] { job.together([] { throw mb::Error("somewhere", "went wrong", "fix it"); }); });
  CHECK(e == "somewhere: went wrong (hint: fix it)");
}
