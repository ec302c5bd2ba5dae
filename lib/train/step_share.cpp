#include "train/step_share.hpp"

#include <algorithm>
#include <string>

#include "dist/job.hpp"

namespace mb::train {

StepShare share_step(int batch_size, int grad_accumulation, int ranks, int rank) {
  const int step_windows = batch_size * grad_accumulation;
  if (ranks < 1 || step_windows % ranks != 0) {
    std::string counts;
    for (int n = 1; n <= step_windows; ++n)
      if (step_windows % n == 0) counts += (counts.empty() ? "" : ", ") + std::to_string(n);
    throw dist::AgreedError(
        std::to_string(ranks) + " processes",
        "cannot share a step of " + std::to_string(step_windows) + " windows (train.batch_size " +
            std::to_string(batch_size) + " x train.grad_accumulation " +
            std::to_string(grad_accumulation) + ") equally",
        "start " + counts +
            " processes, or change the config's batch_size or grad_accumulation "
            "(a new run)");
  }
  StepShare s;
  s.windows = step_windows / ranks;
  s.first_window = rank * s.windows;
  for (int w = s.first_window, end = s.first_window + s.windows; w < end;) {
    const int micro = w / batch_size, row = w % batch_size;
    const int n = std::min(end - w, batch_size - row);
    s.parts.push_back({micro, row, n});
    w += n;
  }
  return s;
}

}  // namespace mb::train
