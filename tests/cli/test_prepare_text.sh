#!/usr/bin/env bash
# prepare + info on text: real KJV books when bible-kjv is installed, and generated binary
# documents (every byte value) always. Checks content, zstd compatibility, determinism.
source "$(dirname "$0")/lib.sh"

# Binary-safe round trip through the zstd tool itself.
make_text_docs docs 40
"$MEGABYTE" -q prepare -j 2 --frame-size 4K --shard-size 20K --val-fraction 0.2 -o ds docs >summary.txt
grep -q "^train" summary.txt || fail "no train line in the summary"
cat ds/train-*.zst ds/validation-*.zst >/dev/null
zstd -q -t ds/*.zst || fail "zstd -t rejects a shard"
nshards=$(ls ds/*.zst | wc -l)
[[ $nshards -ge 4 ]] || fail "expected several shards, got $nshards"
# Every document appears exactly once across the splits, byte for byte.
zstd -q -dc ds/train-*.zst ds/validation-*.zst | wc -c >got_bytes
cat docs/* | wc -c >want_bytes
cmp -s got_bytes want_bytes || fail "byte count differs: $(cat got_bytes) vs $(cat want_bytes)"
# Rebuild with the same inputs and other thread counts: byte-identical.
"$MEGABYTE" -q prepare -j 1 --frame-size 4K --shard-size 20K --val-fraction 0.2 -o ds1 docs >/dev/null
diff <(cd ds && md5sum ./*) <(cd ds1 && md5sum ./*) || fail "not deterministic across thread counts"
"$MEGABYTE" info --verify ds | grep -q "all checksums match" || fail "info --verify"
"$MEGABYTE" info --json ds >info.json
grep -q '"modality": "text"' info.json || fail "info --json: modality"
grep -q '"layout": "bytes"' info.json || fail "info --json: text layout"
# Checksums are quoted, so that other YAML readers never take an all-digit one for a number.
grep -Eq '^ +xxh64: "[0-9a-f]{16}"$' ds/dataset.yaml || fail "xxh64 is not a quoted 16-digit hex string"

# A list of paths on stdin, and --val-files.
ls docs/doc1.bin docs/doc2.bin docs/doc3.bin >list.txt
echo docs/doc2.bin >val.txt
"$MEGABYTE" -q prepare --val-files val.txt -o ds2 - <list.txt >/dev/null
"$MEGABYTE" info --json ds2 | tr -d ' \n' | grep -q '"train":{"bytes":[0-9]*,"compressed_bytes":[0-9]*,"documents":2' || fail "stdin list: train should hold 2 documents"
cmp <(zstd -q -dc ds2/validation-*.zst) docs/doc2.bin || fail "--val-files: validation is not doc2"
# A warning names its command, as an error does.
"$MEGABYTE" prepare -o ds3 docs/doc1.bin >/dev/null 2>warn.txt
grep -q '^megabyte prepare: warning: the validation split is empty' warn.txt ||
  { cat warn.txt; fail "the empty-validation warning does not name its command"; }

# Real text: the King James Bible, one file per book.
if command -v bible >/dev/null; then
  bash "$TESTS_DIR/../../data/fetch-debian.sh" "$WORK/dev" 2>/dev/null
  "$MEGABYTE" prepare -o kjv "$WORK/dev/kjv" >kjv.txt
  cat kjv.txt
  [[ $(cat "$WORK"/dev/kjv/* | wc -c) -eq $(zstd -q -dc kjv/*.zst | wc -c) ]] || fail "KJV bytes differ"
  zstd -q -dc kjv/*.zst >kjv.bytes
  grep -q "In the beginning God created" kjv.bytes || fail "Genesis is missing"
  # The split is decided by the path inside the walked directory, so it does not depend
  # on where the data lives: the same books go to validation from another location.
  mv "$WORK/dev" "$WORK/dev2"
  "$MEGABYTE" -q prepare -o kjv2 "$WORK/dev2/kjv" >/dev/null
  cmp kjv/validation-00000.zst kjv2/validation-00000.zst >/dev/null ||
    [[ $(zstd -q -dc kjv/validation-00000.zst | md5sum) == $(zstd -q -dc kjv2/validation-00000.zst | md5sum) ]] ||
    fail "validation split depends on the data's location"
  "$MEGABYTE" info --verify kjv >/dev/null || fail "KJV verify"
else
  echo "note: bible-kjv not installed; real-text part skipped (data/install-deps.sh installs it)"
fi
echo "all text checks passed"
