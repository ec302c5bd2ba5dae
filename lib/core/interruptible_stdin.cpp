#include "core/interruptible_stdin.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.hpp"

namespace mb {

namespace {
constexpr int kPollMilliseconds = 100;
}

InterruptibleStdinBuf::InterruptibleStdinBuf(const std::atomic<bool>& interrupted, int fd)
    : interrupted_(interrupted), fd_(fd) {}

InterruptibleStdinBuf::int_type InterruptibleStdinBuf::underflow() {
  if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
  for (;;) {
    if (interrupted_.load()) throw Error("standard input", "interrupted while waiting for input");
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, kPollMilliseconds);
    if (ready < 0 && errno != EINTR)
      throw Error("standard input", std::string("cannot wait for input: ") + std::strerror(errno));
    if (ready <= 0) continue;
    const ssize_t n = ::read(fd_, buffer_, sizeof buffer_);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw Error("standard input", std::string("cannot read: ") + std::strerror(errno));
    }
    if (n == 0) return traits_type::eof();
    setg(buffer_, buffer_, buffer_ + n);
    return traits_type::to_int_type(*gptr());
  }
}

InterruptibleStdin::InterruptibleStdin(const std::atomic<bool>& interrupted, int fd)
    : std::istream(nullptr), buf_(interrupted, fd) {
  rdbuf(&buf_);
  // An error thrown by the buffer (interrupted, unreadable) reaches the caller as it is,
  // rather than as a silent badbit.
  exceptions(std::ios::badbit);
}

}  // namespace mb
