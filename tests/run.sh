#!/usr/bin/env bash
# The whole test suite from a fresh clone on Debian 12: install what is needed, build with
# warnings as errors (the CUDA backend too, when nvcc is present), run `meson test`. Then a
# second build with clang under AddressSanitizer and UndefinedBehaviorSanitizer, CUDA left
# out, with the libFuzzer targets of tests/fuzz/: the CPU suites (unit, the kernels' tests
# among them; model; cli) again under the sanitizers, and each fuzz target for a smoke run
# of FUZZ_SECONDS (20) over its seed corpus. Any sanitizer report fails the test it is in.
set -euo pipefail
cd "$(dirname "$0")/.."

bash data/install-deps.sh --sanitizers
[[ -x /usr/local/cuda/bin/nvcc ]] && export PATH="$PATH:/usr/local/cuda/bin"
[[ -d build-test ]] || meson setup build-test --buildtype=release -Dwerror=true
ninja -C build-test
meson test -C build-test --print-errorlogs "$@"

[[ -d build-asan ]] || CC=clang CXX=clang++ meson setup build-asan --buildtype=debugoptimized \
  -Db_sanitize=address,undefined -Db_lundef=false -Dcuda=disabled -Dfuzz=true
ninja -C build-asan
# Stop at the first report of either sanitizer, leaks included; the suppressions are narrow
# and say why (tests/*.supp).
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp
meson test -C build-asan --print-errorlogs --suite unit --suite model --suite cli --suite fuzz
