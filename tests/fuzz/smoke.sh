#!/usr/bin/env bash
# One fuzz target's smoke run (suite fuzz): FUZZ_SECONDS (default 20) of libFuzzer over the
# target's seed corpus, which make-corpus.sh makes once per build directory. New inputs go to
# a scratch directory; a crash, leak, timeout or sanitizer report fails the test and its
# input is kept as fuzz-artifacts/NAME-crash-... in the build directory.
# The mutations follow a fixed seed (FUZZ_SEED, default 1), so that a CI run tests the same
# inputs as the last one, as far as its time allows, and a test that passed keeps passing:
# finding new bugs is the work of long fuzzing runs (README, Robustness), which pick a seed
# of their own; FUZZ_SEED=0 does the same here.
# Usage: smoke.sh FUZZ_EXE NAME   (env: FUZZ_DIR, MEGABYTE, FUZZ_CORPUS_DIR)
set -euo pipefail
exe=$1 name=$2
: "${FUZZ_DIR:?}" "${MEGABYTE:?}" "${FUZZ_CORPUS_DIR:?}"
seconds=${FUZZ_SECONDS:-20}
seed=${FUZZ_SEED:-1}

# One test makes the corpus for all; the others wait for it (meson may run them in any order).
exec 9>"$FUZZ_CORPUS_DIR.lock"
flock 9
[[ -f $FUZZ_CORPUS_DIR/.complete ]] || bash "$FUZZ_DIR/make-corpus.sh" "$FUZZ_CORPUS_DIR"
flock -u 9

work=$(mktemp -d "${TMPDIR:-/tmp}/mb-fuzz-$name.XXXXXX")
trap 'rm -rf "$work"' EXIT
artifacts="$(dirname "$FUZZ_CORPUS_DIR")/fuzz-artifacts"
mkdir -p "$artifacts"
export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$FUZZ_DIR/../lsan.supp}"
rc=0
# -error_exitcode: libFuzzer's default, 77, is what meson reads as a skipped test.
"$exe" -seed="$seed" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 -error_exitcode=1 \
  -artifact_prefix="$artifacts/$name-" "$work" "$FUZZ_CORPUS_DIR/$name" >"$work/log" 2>&1 || rc=$?
# The progress lines are many; keep the start, the end and any report.
grep -vE '^#[0-9]+.*(NEW|REDUCE|pulse) ' "$work/log" | tail -n 60
exit "$rc"
