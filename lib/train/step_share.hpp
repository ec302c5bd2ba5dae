// How the ranks of a job share one optimiser step (DESIGN.md, decision 9). The config fixes
// the step: grad_accumulation micro-batches of batch_size windows, the very windows one
// process draws, in the same order. With N ranks, rank r takes the step's windows
// [r·W, (r+1)·W), W = batch_size · grad_accumulation / N, run in micro-batches cut where the
// config's micro-batches are cut, so a rank never holds more than batch_size windows at once
// and every window keeps its place (micro-batch, row) in the step, hence its dropout masks.
// The same config on any N that divides the step is the same run, up to the order in which
// floating-point sums are taken.
#pragma once

#include <vector>

namespace mb::train {

// Windows of one micro-batch of the config (`micro`), rows [row, row + windows) of it.
struct MicroBatchPart {
  int micro = 0;
  int row = 0;
  int windows = 0;
};

struct StepShare {
  int first_window = 0;  // this rank's windows of the step: [first_window, first_window + windows)
  int windows = 0;
  std::vector<MicroBatchPart> parts;  // in order; their windows add up to `windows`
};

// The share of rank `rank` of `ranks`. Throws mb::AgreedError naming the process counts that
// would work when `ranks` does not divide batch_size · grad_accumulation.
StepShare share_step(int batch_size, int grad_accumulation, int ranks, int rank);

}  // namespace mb::train
