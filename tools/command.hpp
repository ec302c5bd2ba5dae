// The shape every subcommand shares: it registers its options on a CLI11 subcommand and
// returns the function that runs it once the command line is parsed. main.cpp only
// dispatches; each tools/<name>.cpp only parses, calls lib/ and prints.
#pragma once

#include <CLI/CLI.hpp>

#include <atomic>
#include <functional>

namespace mb::tools {

// Exit statuses scripts can rely on (documented in megabyte(1)).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // bad input, corrupt data, failed work
inline constexpr int kExitUsage = 2;    // bad command line
inline constexpr int kExitInterrupted = 130;

using RunFunction = std::function<int()>;

RunFunction add_prepare_command(CLI::App& app);
RunFunction add_info_command(CLI::App& app);
RunFunction add_bench_command(CLI::App& app);
RunFunction add_train_command(CLI::App& app);
RunFunction add_sample_command(CLI::App& app);
RunFunction add_eval_command(CLI::App& app);

// Set by SIGINT/SIGTERM; long work polls it and stops cleanly, leaving nothing half-written.
extern std::atomic<bool> g_interrupted;

}  // namespace mb::tools
