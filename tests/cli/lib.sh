# Helpers shared by the CLI end-to-end tests. Each test script sources this file, runs the
# real `megabyte` binary ($MEGABYTE) in a fresh temporary directory, and exits non-zero on
# the first failed check (77 = skipped, for meson).
set -euo pipefail

: "${MEGABYTE:?set MEGABYTE to the megabyte binary}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mb-cli.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }

# expect_fail STATUS SUBSTRING CMD...: CMD must exit with STATUS and print one line on
# stderr containing SUBSTRING.
expect_fail() {
  local want=$1 needle=$2; shift 2
  local rc=0
  "$@" >"$WORK/out.txt" 2>"$WORK/err.txt" || rc=$?
  [[ $rc -eq $want ]] || { cat "$WORK/err.txt" >&2; fail "'$*' exited $rc, expected $want"; }
  grep -qF -- "$needle" "$WORK/err.txt" || { cat "$WORK/err.txt" >&2; fail "'$*': stderr lacks '$needle'"; }
  if [[ $want -eq 1 ]]; then
    local lines; lines=$(grep -vEc '^megabyte [a-z]+: warning: ' "$WORK/err.txt" || true)
    [[ $lines -eq 1 ]] || { cat "$WORK/err.txt" >&2; fail "'$*': error is $lines lines, expected one"; }
  fi
  echo "ok: $* -> $rc: $(head -c 200 "$WORK/err.txt" | head -1)"
}

# No directory named like a dataset in the making may survive a failure.
expect_no_partial() {
  local leftovers; leftovers=$(find "${1:-.}" -maxdepth 1 -name '.*partial*' -o -maxdepth 1 -name '.*.tmp-*')
  [[ -z $leftovers ]] || fail "left behind: $leftovers"
}

# Make N small text documents with every byte value (NUL included).
make_text_docs() {
  local dir=$1 n=$2
  mkdir -p "$dir"
  for i in $(seq 1 "$n"); do
    { printf 'document %d\n' "$i"; head -c $((i * 997)) /dev/urandom; } >"$dir/doc$i.bin"
  done
}

# Runs a megabyte command whose standard input is a pipe that stays open and silent, sends it
# SIGINT once it is waiting, and checks that it stops at once (within 10 s, where a wait for
# input would last until the pipe closed) with 130, saying it was interrupted.
expect_interrupted_on_stdin() {
  rm -f "$WORK/silent.fifo"; mkfifo "$WORK/silent.fifo"
  exec 7<>"$WORK/silent.fifo"   # a writer that never writes: no end of input
  "$@" <"$WORK/silent.fifo" >/dev/null 2>"$WORK/stdin.err" &
  local pid=$! rc=0
  sleep 0.5
  kill -INT $pid
  for _ in $(seq 1 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
  if kill -0 $pid 2>/dev/null; then
    kill -9 $pid; exec 7>&-
    fail "'$*' still waits for standard input 10 s after SIGINT"
  fi
  wait $pid || rc=$?
  exec 7>&-
  [[ $rc -eq 130 ]] || { cat "$WORK/stdin.err" >&2; fail "'$*' interrupted on stdin exited $rc, expected 130"; }
  grep -q "standard input: interrupted" "$WORK/stdin.err" || { cat "$WORK/stdin.err" >&2; fail "'$*': no word of the interruption"; }
  echo "ok: $* interrupted while waiting on stdin -> 130"
}
