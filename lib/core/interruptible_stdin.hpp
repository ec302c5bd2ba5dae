// Standard input as a std::istream that stops waiting once `interrupted` is set. megabyte's
// signals only set a flag (tools/main.cpp: no handler runs on top of the work, so no read is
// ever cut short), which a plain std::cin blocked on a silent pipe or terminal would never
// see: `megabyte prepare -` or `sample --prompt-file -` would wait for input through Ctrl-C.
// This one waits with poll() a tenth of a second at a time, and when the flag is up throws
// mb::Error ("standard input: interrupted") out of the read that was waiting.
#pragma once

#include <atomic>
#include <istream>
#include <streambuf>

namespace mb {

class InterruptibleStdinBuf : public std::streambuf {
 public:
  explicit InterruptibleStdinBuf(const std::atomic<bool>& interrupted, int fd = 0);

 protected:
  int_type underflow() override;

 private:
  const std::atomic<bool>& interrupted_;
  int fd_;
  char buffer_[1 << 16];
};

class InterruptibleStdin : public std::istream {
 public:
  // fd: the descriptor to read (0, standard input; another for tests).
  explicit InterruptibleStdin(const std::atomic<bool>& interrupted, int fd = 0);

 private:
  InterruptibleStdinBuf buf_;
};

}  // namespace mb
