// `megabyte bench --config C --eval`: forward-only throughput of a config's model on this
// machine, the pass `megabyte eval` runs for every batch of windows (Model::forward, not
// training: no dropout, the loss of every position fetched to the host), on random bytes, with
// no backward pass. The figure to set beside PyTorch's forward under torch.no_grad()
// (tests/reference/megabyte_torch.py --eval).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "backend/backend.hpp"
#include "model/config.hpp"

namespace mb::train {

struct EvalBenchmark {
  int batch = 0;         // windows per forward pass
  int batches = 0;       // timed forward passes (after one warm-up pass)
  double seconds = 0.0;  // wall time of the timed passes
  double bytes_per_batch = 0.0;
  double flops_per_batch = 0.0;  // forward_flops_per_window × batch
  double loss = 0.0;             // mean -ln p of the last pass (random weights: about ln 256)
  std::size_t parameters = 0;
  std::size_t activation_bytes = 0;   // the model's arena: the buffers a pass of `batch` uses
  std::size_t peak_rss_bytes = 0;     // the process's peak resident memory
  std::size_t peak_device_bytes = 0;  // on a GPU: peak device memory (Backend::peak_device_bytes)
  std::string device;                 // Backend::description()
  double batch_seconds() const { return seconds / batches; }
  double bytes_per_second() const { return bytes_per_batch * batches / seconds; }
  double gflops() const { return flops_per_batch * batches / seconds / 1e9; }
};

// Builds the model of `config` for `batch` windows with the memory settings of its train
// section (as `megabyte eval` builds a run's model) and fresh weights from train.seed, runs one
// warm-up pass, then passes over the same `batch` random windows until `seconds` have passed
// and at least `min_batches` ran.
EvalBenchmark benchmark_eval(std::shared_ptr<backend::Backend> backend, const model::Config& config,
                             int batch, double seconds, int min_batches);

}  // namespace mb::train
