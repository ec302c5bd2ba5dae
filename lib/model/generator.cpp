#include "model/generator.hpp"

#include <algorithm>
#include <string>

#include "backend/backend.hpp"
#include "core/error.hpp"

namespace mb::model {

// The bytes fed, the logits, and the model's decoder (model.hpp), which computes them.
struct Generator::Impl {
  Impl(const Model& m, int batch)
      : k(*m.backend()),
        T(m.config().context),
        B(batch),
        decoder(m.make_decoder(batch)),
        bytes(static_cast<std::size_t>(batch)),
        logits(static_cast<std::size_t>(batch) * kByteValues) {
    for (auto& b : bytes) b.reserve(T);
  }

  backend::Backend& k;
  const int T, B;
  std::unique_ptr<CachedDecoder> decoder;
  std::vector<std::vector<std::uint8_t>> bytes;  // per sequence, all of one length
  std::vector<float> logits;                     // [B, 256], host
  int logits_position = -1;                      // the position `logits` holds, -1 if none
};

Generator::Generator(const Model& model, int batch) {
  if (!model.backend() || !model.view().values)
    throw std::logic_error("Generator: the model's parameters are not allocated");
  impl_ = std::make_unique<Impl>(model, batch);
}

Generator::~Generator() = default;
Generator::Generator(Generator&&) noexcept = default;
Generator& Generator::operator=(Generator&&) noexcept = default;

void Generator::reset() {
  for (auto& b : impl_->bytes) b.clear();
  impl_->logits_position = -1;
  impl_->decoder->reset();
}

namespace {

void check_room(int position, int T) {
  if (position >= T)
    throw Error("generation", "the context of " + std::to_string(T) + " bytes is full",
                "the model sees at most model.context bytes: generate fewer");
}

}  // namespace

void Generator::feed(std::uint8_t byte) {
  check_room(position(), impl_->T);
  for (auto& b : impl_->bytes) b.push_back(byte);
}

void Generator::feed_each(const std::uint8_t* bytes) {
  check_room(position(), impl_->T);
  for (int i = 0; i < impl_->B; ++i) impl_->bytes[i].push_back(bytes[i]);
}

const float* Generator::next_logits() {
  const int n = position();
  if (n >= impl_->T)
    throw Error("generation",
                "no byte can follow the " + std::to_string(impl_->T) + " bytes of a full context",
                "the model sees at most model.context bytes: generate fewer");
  if (impl_->logits_position != n) {
    const float* device_logits = impl_->decoder->logits(impl_->bytes, n);
    impl_->k.download(impl_->logits.data(), device_logits, impl_->logits.size() * sizeof(float));
    impl_->logits_position = n;
  }
  return impl_->logits.data();
}

int Generator::batch() const { return impl_->B; }
int Generator::position() const { return static_cast<int>(impl_->bytes[0].size()); }
int Generator::context() const { return impl_->T; }
std::size_t Generator::device_bytes() const { return impl_->decoder->device_bytes(); }
const std::vector<std::uint8_t>& Generator::bytes(int sequence) const {
  return impl_->bytes.at(static_cast<std::size_t>(sequence));
}

}  // namespace mb::model
