#!/usr/bin/env bash
# The program's front door: help, version, usage errors.
source "$(dirname "$0")/lib.sh"

"$MEGABYTE" --help | grep -q "prepare" || fail "--help does not list prepare"
"$MEGABYTE" --help | grep -q "info" || fail "--help does not list info"
"$MEGABYTE" help prepare | grep -q -- "--modality" || fail "help prepare lacks --modality"
"$MEGABYTE" help prepare | grep -q -- "Usage: megabyte prepare" || fail "help prepare: usage line"
"$MEGABYTE" help | grep -q "bench" || fail "'megabyte help' does not list the commands"
"$MEGABYTE" prepare --help | grep -q -- "--skip-bad" || fail "prepare --help lacks --skip-bad"
# Every command is listed, has --help with a usage line and an example, and a manual page.
MAN_DIR="$TESTS_DIR/../../man"
for cmd in prepare train eval sample info bench; do
  "$MEGABYTE" --help | grep -Eq "^ +$cmd " || fail "--help does not list $cmd"
  "$MEGABYTE" "$cmd" --help | grep -q "Usage: megabyte $cmd" || fail "$cmd --help: usage line"
  "$MEGABYTE" help "$cmd" | grep -q "Example" || fail "help $cmd has no example"
  [[ -f "$MAN_DIR/megabyte-$cmd.1" ]] || fail "no man page megabyte-$cmd.1"
  grep -qF "megabyte\\-$cmd (1)" "$MAN_DIR/megabyte.1" || fail "megabyte(1) does not refer to megabyte-$cmd(1)"
done
for page in dataset config checkpoint; do
  [[ -f "$MAN_DIR/megabyte-$page.5" ]] || fail "no man page megabyte-$page.5"
done
"$MEGABYTE" --version | grep -Eq '^megabyte [0-9]+\.[0-9]+\.[0-9]+' || fail "--version"
# The pages in man/ are templates; the build fills their version in from meson.build's.
version=$("$MEGABYTE" --version | head -n 1 | cut -d ' ' -f 2)
for page in "$MAN_DIR"/megabyte*.[15]; do
  name=$(basename "$page")
  grep -qF '"megabyte @VERSION@"' "$page" || fail "man/$name: no \"megabyte @VERSION@\" in its .TH line"
  grep -qF "\"megabyte $version\"" "$MAN_BUILD_DIR/$name" || fail "the built $name does not say megabyte $version"
done
expect_fail 2 "no command 'frobnicate'" "$MEGABYTE" help frobnicate
expect_fail 2 "" "$MEGABYTE" prepare --no-such-option x
expect_fail 2 "output" "$MEGABYTE" prepare somefile
expect_fail 2 "" "$MEGABYTE" prepare -m video -o out somefile
echo "all help checks passed"
