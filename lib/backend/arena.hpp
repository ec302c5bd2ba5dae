// One allocation for all of a model's buffers, sized before the first step.
//
// A model first reserves every buffer it will need (activations for its largest batch,
// gradients, device copies of its parameters), getting a slice per buffer; then it commits the
// arena, which makes one allocation on the backend. Nothing is allocated per step, a config
// that does not fit fails at once rather than hours in, and the size is known without a device:
// `megabyte bench --memory` builds the model, reserves, and reports bytes() without committing.
#pragma once

#include <cstddef>
#include <stdexcept>

#include "backend/backend.hpp"

namespace mb::backend {

class Arena;

// A typed range of an arena; valid (get() non-null) once the arena is committed.
template <class T>
class Slice {
 public:
  Slice() = default;
  T* get() const;
  std::size_t size() const { return count_; }  // elements
  explicit operator bool() const { return arena_ != nullptr; }

 private:
  friend class Arena;
  Slice(const Arena* arena, std::size_t offset, std::size_t count)
      : arena_(arena), offset_(offset), count_(count) {}
  const Arena* arena_ = nullptr;
  std::size_t offset_ = 0;  // bytes
  std::size_t count_ = 0;
};

class Arena {
 public:
  static constexpr std::size_t kAlignment = 256;  // cuBLASLt and vector loads like this

  Arena() = default;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // Room for `count` values of T; only before commit().
  template <class T>
  Slice<T> reserve(std::size_t count) {
    if (memory_.get()) throw std::logic_error("Arena::reserve after commit");
    const std::size_t offset = bytes_;
    bytes_ += (count * sizeof(T) + kAlignment - 1) / kAlignment * kAlignment;
    return Slice<T>(this, offset, count);
  }

  std::size_t bytes() const { return bytes_; }

  // Allocates bytes() on `backend` (one allocation; zeroed). Throws what backend.allocate
  // throws when it does not fit.
  void commit(Backend& backend) {
    memory_ = DeviceMemory(backend, bytes_);
    if (bytes_) backend.zero(memory_.get(), bytes_);
  }
  bool committed() const { return memory_.get() != nullptr || bytes_ == 0; }

  std::byte* base() const { return memory_.as<std::byte>(); }

 private:
  std::size_t bytes_ = 0;
  DeviceMemory memory_;
};

template <class T>
T* Slice<T>::get() const {
  if (!arena_ || !arena_->base()) return nullptr;
  return reinterpret_cast<T*>(arena_->base() + offset_);
}

}  // namespace mb::backend
