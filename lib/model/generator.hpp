// Generation with a trained model, one byte at a time, with key/value caches so that each new
// byte costs one step of each stack instead of a forward pass over the whole window
// (megabyte-sample(1)).
//
// The model computes each step with its own equations and stacks, run one position at a time
// against KV caches (Model::make_decoder: MegabyteDecoder in megabyte.cpp, one global step per
// patch and P local steps inside it; ByteTransformerDecoder in byte_transformer.cpp, one step
// per byte). The generator keeps the bytes fed and the logits, and never changes the model. It
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

  int batch() const;     // sequences generated side by side
  int position() const;  // bytes fed so far (to each sequence)
  int context() const;   // T: at most this many bytes fit in one generated window
  const std::vector<std::uint8_t>& bytes(int sequence = 0) const;  // the bytes fed so far
  // Memory the generator holds on the model's device besides the model: mostly the KV
  // caches (every layer's keys and values for batch() sequences of context() positions; in a
  // bf16 model as bf16, half the bytes).
  std::size_t device_bytes() const;

  struct Impl;  // generator.cpp

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace mb::model
