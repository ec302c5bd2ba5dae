// Logs and progress go to stderr, results to stdout. One process-wide verbosity, set by
// the program's -q / -v flags.
#pragma once

#include <string_view>

namespace mb {

enum class Verbosity { quiet = 0, normal = 1, verbose = 2 };

void set_verbosity(Verbosity v);
Verbosity verbosity();

// A line on stderr, shown at normal verbosity and above.
void log_info(std::string_view line);
// A line on stderr, shown only with -v.
void log_verbose(std::string_view line);
// A warning on stderr, shown unless -q: "megabyte COMMAND: warning: LINE", as errors name
// their command ("megabyte: warning: LINE" before set_command()).
void log_warning(std::string_view line);
// The command being run ("train"), for the warnings' prefix.
void set_command(std::string_view name);

}  // namespace mb
