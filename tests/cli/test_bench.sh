#!/usr/bin/env bash
# megabyte bench --dataset: measures, reports in both forms, and refuses what it cannot read.
source "$(dirname "$0")/lib.sh"

make_text_docs docs 5
"$MEGABYTE" -q prepare --val-fraction 0 --frame-size 4K -o ds docs >/dev/null

"$MEGABYTE" -q bench --dataset ds --window 512 --seconds 0.2 -j 2 >bench.txt
grep -Eq '^dataset read: [0-9]+ windows/s of 512 bytes \([0-9]+ MB/s\) on 2 threads' bench.txt ||
  { cat bench.txt; fail "bench table line"; }

"$MEGABYTE" -q bench --dataset ds --window 512 --seconds 0.2 -j 1 --cache 0 --json >bench.json
for field in '"benchmark": "dataset-read"' '"window_bytes": 512' '"threads": 1' '"windows_per_second"'; do
  grep -qF "$field" bench.json || { cat bench.json; fail "bench --json lacks $field"; }
done
windows=$(sed -n 's/.*"windows": \([0-9]*\).*/\1/p' bench.json)
[[ $windows -gt 0 ]] || fail "bench read no windows"

# The validation split is empty here: a clear error, not a hang or a division by zero.
expect_fail 1 "has no bytes to read" "$MEGABYTE" bench --dataset ds --split validation --seconds 0.2
expect_fail 1 "has no split 'test'" "$MEGABYTE" bench --dataset ds --split test --seconds 0.2
expect_fail 1 "not a megabyte dataset" "$MEGABYTE" bench --dataset docs --seconds 0.2
expect_fail 2 "dataset" "$MEGABYTE" bench
echo "all bench checks passed"
