// Generation with a trained model, one byte at a time, with key/value caches so that each new
// byte costs one step of each stack instead of a forward pass over the whole window
// (megabyte-sample(1)).
//
// MEGABYTE: the global model runs once per patch, incrementally, its
// attention reading a cache of the keys and values of the earlier patches; its output for patch
// k (P·D_G wide) is projected by w_GL to P slices of D_L once. Then the local model runs P steps
// inside the patch with a cache of at most P positions, emptied at every patch. The global output
// for patch k depends only on bytes < kP, so it is computed when the first byte of patch k is
// needed, which also makes a prompt that ends inside a patch work: the bytes of the prompt's last
// patch go through the local model, earlier prompt patches only through the global one.
//
// The byte transformer: one cache over byte positions, one step per byte.
//
// The generator reads the model's weights by name (the names of megabyte-checkpoint(5)) from
// its parameter table, where the model's kernels find them (Model::view(): host memory on the
// CPU, the device copy on CUDA), runs on the model's backend, and never changes the model. It
// computes what Model::logits() computes for the same bytes, to rounding; dropout is never
// applied.
//
// It generates `batch` sequences side by side, all at the same position: the samples of one
// prompt. Each step then multiplies `batch` rows by every weight matrix instead of one, which
// reads the weights once for all of them: on a GPU, and for wide models on the CPU, that is
// most of the cost of a step.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model/model.hpp"

namespace mb::model {

class Generator {
 public:
  // `model` (its parameters allocated, loaded and uploaded) must outlive the generator.
  explicit Generator(const Model& model, int batch = 1);
  ~Generator();
  Generator(Generator&&) noexcept;
  Generator& operator=(Generator&&) noexcept;

  // Forgets every byte fed: the next logits are those of the first byte of a window.
  void reset();
  // Appends a known byte to every sequence (a prompt's). Cheap: the caches catch up on the
  // next call to next_logits(). Throws mb::Error when the context (T bytes) is full.
  void feed(std::uint8_t byte);
  // Appends bytes[i] to sequence i, for each of the batch() sequences (bytes just sampled).
  void feed_each(const std::uint8_t* bytes);
  // The logits [batch, 256] of the next byte of each sequence, given every byte fed so far.
  // Valid until the next call to feed(), reset() or next_logits(). Throws mb::Error when
  // position() == context().
  const float* next_logits();

  int batch() const;               // sequences generated side by side
  int position() const;            // bytes fed so far (to each sequence)
  int context() const;             // T: at most this many bytes fit in one generated window
  const std::vector<std::uint8_t>& bytes(int sequence = 0) const;  // the bytes fed so far
  // Memory the generator holds on the model's device besides the model: mostly the KV
  // caches (every layer's keys and values for batch() sequences of context() positions; in a
  // bf16 model as bf16, half the bytes).
  std::size_t device_bytes() const;

  struct Impl;   // generator.cpp: what both kinds share; each kind derives from it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace mb::model
