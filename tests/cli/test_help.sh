#!/usr/bin/env bash
# The program's front door: help, version, usage errors.
source "$(dirname "$0")/lib.sh"

"$MEGABYTE" --help | grep -q "prepare" || fail "--help does not list prepare"
"$MEGABYTE" --help | grep -q "info" || fail "--help does not list info"
"$MEGABYTE" help prepare | grep -q -- "--modality" || fail "help prepare lacks --modality"
"$MEGABYTE" help prepare | grep -q -- "Usage: megabyte prepare" || fail "help prepare: usage line"
"$MEGABYTE" help | grep -q "bench" || fail "'megabyte help' does not list the commands"
"$MEGABYTE" prepare --help | grep -q -- "--skip-bad" || fail "prepare --help lacks --skip-bad"
"$MEGABYTE" --version | grep -Eq '^megabyte [0-9]+\.[0-9]+\.[0-9]+' || fail "--version"
expect_fail 2 "no command 'frobnicate'" "$MEGABYTE" help frobnicate
expect_fail 2 "" "$MEGABYTE" prepare --no-such-option x
expect_fail 2 "output" "$MEGABYTE" prepare somefile
expect_fail 2 "" "$MEGABYTE" prepare -m video -o out somefile
echo "all help checks passed"
