// megabyte: byte-level generative modelling with MEGABYTE (Yu et al. 2023).
// This file only builds the command line and dispatches; see tools/<command>.cpp.
#include <CLI/CLI.hpp>

#include <execinfo.h>
#include <pthread.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <new>
#include <string>
#include <thread>

#include "command.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "dist/job.hpp"

namespace mb::tools {

std::atomic<bool> g_interrupted{false};

namespace {

// A crash is a bug in megabyte: say so on stderr with a backtrace (glibc's backtrace_symbols_fd
// writes straight to the descriptor, without malloc), then die of the same signal so that the
// exit status still tells what happened.
void on_crash(int sig) {
  const char* what = sig == SIGSEGV  ? "segmentation fault"
                     : sig == SIGBUS ? "bus error"
                     : sig == SIGFPE ? "arithmetic exception"
                     : sig == SIGILL ? "illegal instruction"
                                     : "abort";
  const char* head = "megabyte: internal error: ";
  const char* tail = "; please report this with the backtrace below\n";
  ssize_t ignored = write(STDERR_FILENO, head, std::strlen(head));
  ignored = write(STDERR_FILENO, what, std::strlen(what));
  ignored = write(STDERR_FILENO, tail, std::strlen(tail));
  static_cast<void>(ignored);
  void* frames[64];
  backtrace_symbols_fd(frames, backtrace(frames, 64), STDERR_FILENO);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

// SIGINT and SIGTERM are taken by one thread that waits for them (sigwait) and sets
// g_interrupted, which long work polls (a second one ends the process at once); every other thread blocks them, so no signal handler
// ever runs on top of the work, and no system call or library (OpenMP, oneDNN, stdio) is cut
// short. A handler that only set the flag, run on the stack of a oneDNN product that Ctrl-C
// landed in, was seen to corrupt the heap (glibc: "corrupted size vs. prev_size"): its JIT
// kernels may keep data below the stack pointer. Must run before any other thread starts,
// since new threads inherit the mask.
void start_signal_thread() {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  std::thread([stop] {
    for (;;) {
      int sig = 0;
      if (sigwait(&stop, &sig) != 0) continue;
      if (!g_interrupted.exchange(true)) continue;
      // A second signal: stop at once, for work that cannot reach a safe point (a read that
      // never returns, such as an input FIFO nobody writes). Like SIGKILL this may leave a
      // hidden temporary behind, never a half-written file under its final name.
      const char* msg = "megabyte: interrupted again: stopping at once\n";
      ssize_t ignored = write(STDERR_FILENO, msg, std::strlen(msg));
      static_cast<void>(ignored);
      _exit(130);
    }
  }).detach();
}

void install_signal_handlers() {
  start_signal_thread();
  // A write past RLIMIT_FSIZE must fail with EFBIG (and be reported), not kill us.
  std::signal(SIGXFSZ, SIG_IGN);
  // backtrace() loads libgcc on first use, which is not safe inside a crash: load it now.
  void* frame[1];
  static_cast<void>(backtrace(frame, 1));
  struct sigaction crash {};
  crash.sa_handler = on_crash;
  sigemptyset(&crash.sa_mask);
  crash.sa_flags = SA_RESETHAND | SA_NODEFER;
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) sigaction(sig, &crash, nullptr);
}

const char* kDescription =
    "megabyte: byte-level generative modelling with MEGABYTE multiscale transformers.\n"
    "Prepare sharded datasets of text, images or audio, train, evaluate and sample.\n";

const char* kFooter =
    "\nRun 'megabyte help COMMAND' or 'megabyte COMMAND --help' for a command's options,\n"
    "and 'man megabyte-COMMAND' for its manual.";

}  // namespace

int run(int argc, char** argv) {
  CLI::App app{kDescription, "megabyte"};
  app.require_subcommand(0, 1);
  app.fallthrough();
  app.footer(kFooter);
  app.set_version_flag("-V,--version", std::string("megabyte ") + MEGABYTE_VERSION);
  bool quiet = false;
  int verbose = 0;
  app.add_flag("-q,--quiet", quiet, "Print only results and errors (no progress, no log lines)");
  app.add_flag("-v,--verbose", verbose, "Print more about what is being done");

  std::map<std::string, std::pair<CLI::App*, RunFunction>> commands;
  auto reg = [&](RunFunction run_fn) {
    CLI::App* sub = app.get_subcommands({}).back();
    commands[sub->get_name()] = {sub, std::move(run_fn)};
  };
  reg(add_prepare_command(app));
  reg(add_train_command(app));
  reg(add_sample_command(app));
  reg(add_eval_command(app));
  reg(add_info_command(app));
  reg(add_bench_command(app));

  CLI::App* help = app.add_subcommand("help", "Show help for a command: megabyte help prepare");
  std::string help_topic;
  help->add_option("command", help_topic, "The command to describe");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }

  set_verbosity(quiet ? Verbosity::quiet : verbose > 0 ? Verbosity::verbose : Verbosity::normal);

  if (help->parsed()) {
    // Format directly: App::help() would forward to the selected subcommand ("help" itself).
    if (help_topic.empty()) {
      std::cout << app.get_formatter()->make_help(&app, "megabyte", CLI::AppFormatMode::Normal);
      return kExitOk;
    }
    auto it = commands.find(help_topic);
    if (it == commands.end()) {
      std::fprintf(stderr, "megabyte: no command '%s' (hint: run 'megabyte --help' for the list)\n",
                   help_topic.c_str());
      return kExitUsage;
    }
    CLI::App* sub = it->second.first;
    std::cout << sub->get_formatter()->make_help(sub, "megabyte " + help_topic,
                                                 CLI::AppFormatMode::Normal);
    return kExitOk;
  }
  for (auto& [name, cmd] : commands) {
    if (!cmd.first->parsed()) continue;
    set_command(name);
    install_signal_handlers();
    // Under mpirun or srun with several processes, train and bench form a job (lib/dist); the
    // other commands run as one process and say so rather than run N times side by side.
    const int launched = dist::launched_processes();
    if (launched > 1 && name != "train" && name != "bench") {
      if (dist::launched_rank() != 0) return kExitUsage;  // rank 0 says why
      std::fprintf(stderr,
                   "megabyte %s: was started as one of %d processes (mpirun, srun), but runs as "
                   "one (hint: run it without mpirun or srun; train and bench run as a job of "
                   "several)\n",
                   name.c_str(), launched);
      return kExitUsage;
    }
    // Rank 0 alone speaks for a job; an error on one rank ends them all (dist/job.hpp).
    dist::Job* job = nullptr;
    auto rank_prefix = [&] { return job && !job->single() ? job->who() + ": " : std::string(); };
    auto fail = [&](int status) {
      if (job && !job->single()) job->abort(status);
      return status;
    };
    try {
      if (launched > 1) {
        job = &dist::Job::get();
        if (!job->is_root()) set_verbosity(Verbosity::quiet);
      }
      int rc = cmd.second();
      return g_interrupted.load() ? kExitInterrupted : rc;
    } catch (const dist::AgreedError& e) {
      // Every rank raised it alike: rank 0 reports it, and every rank ends normally.
      std::fflush(stdout);
      if (!job || job->is_root()) std::fprintf(stderr, "megabyte %s: %s\n", name.c_str(), e.what());
      if (job) job->finalize();
      return g_interrupted.load() ? kExitInterrupted : kExitFailure;
    } catch (const Error& e) {
      std::fflush(stdout);
      std::fprintf(stderr, "megabyte %s: %s%s\n", name.c_str(), rank_prefix().c_str(), e.what());
      return fail(g_interrupted.load() ? kExitInterrupted : kExitFailure);
    } catch (const std::bad_alloc&) {
      // Host memory ran out outside the arena (whose failures say what they asked for): a
      // limit of the machine or of the process, not a bug.
      std::fflush(stdout);
      std::fprintf(stderr,
                   "megabyte %s: %sout of memory (hint: `megabyte bench --config CONFIG --memory "
                   "--fit SIZE` shows what a training config needs and what would fit)\n",
                   name.c_str(), rank_prefix().c_str());
      return fail(kExitFailure);
    } catch (const std::exception& e) {
      std::fflush(stdout);
      std::fprintf(stderr, "megabyte %s: %sinternal error: %s\n", name.c_str(),
                   rank_prefix().c_str(), e.what());
      return fail(kExitFailure);
    }
  }
  std::cout << app.help();
  return kExitUsage;
}

}  // namespace mb::tools

int main(int argc, char** argv) { return mb::tools::run(argc, argv); }
