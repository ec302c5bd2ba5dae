// `megabyte bench --config`: training throughput of a config on this machine, measured on the
// real training step (train_step.hpp) over random bytes, beside the machine's own sgemm rate
// so the achieved GFLOP/s can be read as a fraction of what the hardware does.
#pragma once

#include <cstddef>
#include <cstdint>

#include <string>

#include "backend/backend.hpp"
#include "model/config.hpp"

namespace mb::train {

struct TrainBenchmark {
  int steps = 0;         // measured steps (after one warm-up step)
  double seconds = 0.0;  // wall time of the measured steps
  double bytes_per_step = 0.0;
  double flops_per_step = 0.0;  // training_flops_per_step
  std::size_t parameters = 0;
  std::size_t activation_bytes = 0;   // what the model holds for one step's backward
  std::size_t peak_rss_bytes = 0;     // the process's peak resident memory
  std::size_t peak_device_bytes = 0;  // on a GPU: peak device memory (Backend::peak_device_bytes)
  std::string device;                 // Backend::description()
  double peak_bf16_flops = 0.0;       // the device's table peaks (0: not known, or the CPU)
  double peak_fp32_flops = 0.0;
  // In a job of several processes (mpirun): their number, what joined them, and per step the
  // seconds and bytes (sent by each rank) of the collectives; bytes_per_step is the whole job's.
  int ranks = 1;
  std::string collectives;
  double collective_seconds_per_step = 0.0;
  double collective_bytes_per_step = 0.0;
  double step_seconds() const { return seconds / steps; }
  // The share of a step spent outside the collectives: the job's rate over that of the same
  // ranks with communication for free.
  double parallel_efficiency() const {
    return steps > 0 ? 1.0 - collective_seconds_per_step / step_seconds() : 1.0;
  }
  double bytes_per_second() const { return bytes_per_step * steps / seconds; }
  double gflops() const { return flops_per_step * steps / seconds / 1e9; }
};

// Runs one warm-up step, then steps until `seconds` have passed and at least `min_steps` ran,
// on `device`. Under mpirun the ranks share each step as `megabyte train` does (and stop
// together); every rank returns the job's figures.
TrainBenchmark benchmark_training(const model::Config& config, double seconds, int min_steps,
                                  backend::Device device, backend::Precision precision);

// GFLOP/s of `device` through the same matmul op the model uses, in `precision`: out[n,n] =
// a[n,n]·b[n,n]ᵀ, repeated for about `seconds`.
double measure_sgemm_gflops(backend::Device device, backend::Precision precision, int n,
                            double seconds);

// Peak resident set size of this process so far (getrusage), in bytes.
std::size_t peak_rss_bytes();

}  // namespace mb::train
