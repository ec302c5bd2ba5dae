// The learning-rate schedule against the formula in its header: linear warm-up, polynomial
// decay, and a run with no warm-up.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>

#include "model/config.hpp"
#include "train/lr_schedule.hpp"

TEST_CASE(
    "learning-rate schedule: linear warm-up from lr/warmup, the peak at the first step after it") {
  mb::model::OptimizerConfig opt;
  opt.lr = 3e-4;
  opt.warmup_steps = 100;
  opt.decay_power = 1.0;
  const std::int64_t steps = 1100;
  using mb::train::learning_rate;
  CHECK(learning_rate(opt, steps, 0) == doctest::Approx(3e-6).epsilon(1e-12));
  CHECK(learning_rate(opt, steps, 0) > 0.0);
  for (std::int64_t s = 0; s < 100; ++s) {
    INFO("step " << s);
    CHECK(learning_rate(opt, steps, s) ==
          doctest::Approx(3e-4 * static_cast<double>(s + 1) / 100.0).epsilon(1e-12));
  }
  // Linear: equal increments.
  const double d1 = learning_rate(opt, steps, 1) - learning_rate(opt, steps, 0);
  const double d2 = learning_rate(opt, steps, 50) - learning_rate(opt, steps, 49);
  CHECK(d1 == doctest::Approx(d2).epsilon(1e-9));
  CHECK(learning_rate(opt, steps, 99) == doctest::Approx(3e-4).epsilon(1e-12));
  CHECK(learning_rate(opt, steps, 100) == 3e-4);  // the peak, exactly
  for (std::int64_t s = 0; s < steps; ++s) CHECK_LE(learning_rate(opt, steps, s), 3e-4);
}

TEST_CASE(
    "learning-rate schedule: polynomial decay after warm-up, positive at the last step, never "
    "negative") {
  mb::model::OptimizerConfig opt;
  opt.lr = 1e-3;
  opt.warmup_steps = 100;
  const std::int64_t steps = 1100;  // 1000 decay steps
  using mb::train::learning_rate;
  // lr · (1 - (step - warmup) / (steps - warmup))^power
  auto formula = [&](std::int64_t step, double power) {
    return 1e-3 * std::pow(1.0 - static_cast<double>(step - 100) / 1000.0, power);
  };
  for (double power : {1.0, 2.0, 0.5}) {
    opt.decay_power = power;
    INFO("decay_power " << power);
    for (std::int64_t s : {100, 101, 350, 600, 850, 1099})
      CHECK(learning_rate(opt, steps, s) == doctest::Approx(formula(s, power)).epsilon(1e-12));
    CHECK(learning_rate(opt, steps, steps - 1) > 0.0);
    double previous = learning_rate(opt, steps, 100);
    for (std::int64_t s = 0; s < steps + 10; ++s) {
      const double lr = learning_rate(opt, steps, s);
      CHECK_GE(lr, 0.0);
      if (s > 100) {
        CHECK_LE(lr, previous);  // decays monotonically
        previous = lr;
      }
    }
  }
  // The midpoints by hand: half the peak for power 1, a quarter for power 2.
  opt.decay_power = 1.0;
  CHECK(learning_rate(opt, steps, 600) == doctest::Approx(5e-4).epsilon(1e-12));
  opt.decay_power = 2.0;
  CHECK(learning_rate(opt, steps, 600) == doctest::Approx(2.5e-4).epsilon(1e-12));
  CHECK(learning_rate(opt, steps, steps - 1) == doctest::Approx(1e-3 * 1e-6).epsilon(1e-9));
}

TEST_CASE("learning-rate schedule: warmup_steps = 0 starts at the peak") {
  mb::model::OptimizerConfig opt;
  opt.lr = 2e-4;
  opt.warmup_steps = 0;
  opt.decay_power = 1.0;
  using mb::train::learning_rate;
  CHECK(learning_rate(opt, 10, 0) == 2e-4);
  CHECK(learning_rate(opt, 10, 5) == doctest::Approx(1e-4).epsilon(1e-12));
  CHECK(learning_rate(opt, 10, 9) == doctest::Approx(2e-5).epsilon(1e-12));
  for (std::int64_t s = 0; s < 12; ++s) {
    const double lr = learning_rate(opt, 10, s);
    CHECK(std::isfinite(lr));
    CHECK_GE(lr, 0.0);
  }
  // One step in all: taken at the peak.
  CHECK(learning_rate(opt, 1, 0) == 2e-4);
}
