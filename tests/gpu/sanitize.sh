#!/bin/sh
# Runs the GPU op tests under compute-sanitizer (suite gpu-sanitizer, tests/gpu/meson.build).
#
#   sanitize.sh COMPUTE_SANITIZER TOOL GPU_TESTS [doctest arguments...]
#
# COMPUTE_SANITIZER is its path, or '' where Meson found none. Exits 77 (SKIP) without a
# usable CUDA device, or without compute-sanitizer; otherwise with compute-sanitizer's status:
# 1 when it reports an error (--error-exitcode 1), else the tests' own.
#
# Why a wrapper: without a device, compute-sanitizer does not pass the runner's 77 through;
# it stops with "Target application terminated before first instrumented API call" and
# exits 255 (seen with compute-sanitizer 2025.3.1 on a machine without a GPU). So the runner
# is asked first: it checks for a device before doctest runs, and with --no-run it then
# exits 0 without running a test.
set -u

sanitizer=$1
tool=$2
tests=$3
shift 3

probe=$("$tests" --no-run 2>&1)
status=$?
if [ "$status" -ne 0 ]; then
    # 77: no device (the runner says why); anything else (1: a driver CUDA cannot use) fails.
    printf '%s\n' "$probe"
    exit "$status"
fi
if [ -z "$sanitizer" ]; then
    echo "gpu sanitizer tests skipped: compute-sanitizer not found" \
         "(Meson looked on PATH and in /usr/local/cuda/bin when the build was set up)"
    exit 77
fi
exec "$sanitizer" --tool "$tool" --error-exitcode 1 "$tests" "$@"
