#!/usr/bin/env bash
# Bad input: each case must give a one-line error naming what and where, a non-zero exit
# status, and leave nothing half-written.
source "$(dirname "$0")/lib.sh"

make_text_docs docs 6
"$MEGABYTE" -q prepare --frame-size 2K -o good docs >/dev/null

# The output directory already exists: refused, and left as it was.
before=$(cd good && md5sum ./*)
expect_fail 1 "already exists" "$MEGABYTE" prepare -o good docs
[[ $(cd good && md5sum ./*) == "$before" ]] || fail "existing output was modified"

# A missing input path.
expect_fail 1 "nope.txt: no such file or directory" "$MEGABYTE" prepare -o out nope.txt
[[ ! -e out ]] || fail "out exists after a failed prepare"

# An image stb_image cannot decode: stops with the path, leaves nothing; --skip-bad skips it.
mkdir imgs && printf 'not an image at all' >imgs/broken.png
printf 'P6\n2 2\n255\n\x00\x00\x00\xff\xff\xff\x10\x20\x30\x40\x50\x60' >imgs/ok.ppm
expect_fail 1 "imgs/broken.png: cannot decode image" "$MEGABYTE" prepare -m image --image-size 2 --patch-size 12 -o im imgs
[[ ! -e im ]] || fail "im exists after a failed prepare"
expect_no_partial .
"$MEGABYTE" prepare -m image --image-size 2 --patch-size 12 --skip-bad -o im imgs >im.txt 2>im.err
grep -q "skipping imgs/broken.png" im.err || fail "--skip-bad did not report the skipped file"
grep -q "skipped 1 of 2 files" im.txt || fail "--skip-bad summary"

# An image of no pixels (found by fuzz_image): stb_image decodes a PGM 3 pixels wide and 0
# high; its empty square once made the resize abort the process.
mkdir empty-img && printf 'P5\n3 0\n255\n' >empty-img/empty.pgm
expect_fail 1 "empty-img/empty.pgm: cannot decode image: it has no pixels (3 x 0)" "$MEGABYTE" prepare -m image --image-size 8 --patch-size 12 -o im0 empty-img
[[ ! -e im0 ]] || fail "im0 exists after a failed prepare"

# An audio file libsndfile cannot open.
mkdir snd && head -c 3000 /dev/urandom >snd/noise.wav
expect_fail 1 "snd/noise.wav" "$MEGABYTE" prepare -m audio -o au snd
[[ ! -e au ]] || fail "au exists after a failed prepare"

# --val-files naming a path that is not an input (a typo would silently empty validation).
printf 'docs/doc1.bin\n./docs/doc2.bin\n' >val.txt
expect_fail 1 "1 of its 2 paths are not among the inputs, the first is './docs/doc2.bin'" "$MEGABYTE" prepare --val-files val.txt -o v docs/doc1.bin docs/doc2.bin
[[ ! -e v ]] || fail "v exists after a failed prepare"

# The output's parent directory does not exist: named as the user wrote it.
expect_fail 1 "no/such/parent/ds: cannot create" "$MEGABYTE" prepare -o no/such/parent/ds docs

# A patch size that is not 3*p*p, and one that does not tile the image.
expect_fail 1 "not 3*p*p" "$MEGABYTE" prepare -m image --patch-size 10 -o x imgs
expect_fail 1 "not a multiple" "$MEGABYTE" prepare -m image --image-size 10 --patch-size 48 -o x imgs

# A directory that is not a dataset, and one that does not exist.
expect_fail 1 "not a megabyte dataset" "$MEGABYTE" info docs
expect_fail 1 "no such dataset directory" "$MEGABYTE" info nothing-here

# Truncated shard: named, with what to do.
cp -r good trunc && shard=$(ls trunc/train-*.zst | head -1)
head -c $(( $(stat -c %s "$shard") - 10 )) "$shard" >t && mv t "$shard"
expect_fail 1 "$shard" "$MEGABYTE" info trunc

# One flipped byte in the first frame: --verify names the shard, the frame and its offset.
cp -r good flip && shard=$(ls flip/train-*.zst | head -1)
printf '\xff' | dd of="$shard" bs=1 seek=40 conv=notrunc status=none
expect_fail 1 "$shard: frame 0 at offset 0: checksum mismatch" "$MEGABYTE" info --verify flip

# A missing shard.
cp -r good miss && rm "$(ls miss/train-*.zst | head -1)"
expect_fail 1 "shard is missing" "$MEGABYTE" info miss

# A manifest with an unknown key and with a bad value: file, line and key.
cp -r good badkey && sed -i 's/^modality:/modalty:/' badkey/dataset.yaml
expect_fail 1 "badkey/dataset.yaml: line 4: unknown key 'modalty' (hint: did you mean 'modality'?)" "$MEGABYTE" info badkey
cp -r good badval && sed -i '0,/documents: [0-9]*/s//documents: many/' badval/dataset.yaml
expect_fail 1 "key 'splits.train.documents'" "$MEGABYTE" info badval
cp -r good badyaml && printf 'splits: [unclosed\n' >>badyaml/dataset.yaml
expect_fail 1 "invalid YAML" "$MEGABYTE" info badyaml

# A full disk (RLIMIT_FSIZE): the write error is reported and no partial dataset remains.
head -c 3000000 /dev/urandom >big.bin
expect_fail 1 "full/train-00000.zst: cannot write" bash -c "ulimit -f 1000; exec \"$MEGABYTE\" prepare --frame-size 64K -o full big.bin"
[[ ! -e full ]] || fail "full exists after a failed prepare"
expect_no_partial .

# Interrupted: SIGINT while preparing stops with 130 and leaves nothing.
mkdir many && for i in $(seq 1 300); do head -c 100000 /dev/urandom >many/f$i; done
"$MEGABYTE" prepare -j 1 -l 19 -o intr many >/dev/null 2>intr.err &
pid=$!
sleep 0.5
kill -INT $pid
rc=0; wait $pid || rc=$?
if [[ $rc -eq 0 ]]; then
  echo "note: prepare finished before the signal; interrupt case not exercised"
else
  [[ $rc -eq 130 ]] || fail "interrupted prepare exited $rc, expected 130"
  [[ ! -e intr ]] || fail "intr exists after an interrupted prepare"
  expect_no_partial .
fi
# Interrupted while waiting for a list of paths on standard input that never comes.
expect_interrupted_on_stdin "$MEGABYTE" prepare -o waiting -
[[ ! -e waiting ]] || fail "waiting exists after an interrupted prepare"

# Work that cannot reach a safe point (an input FIFO nobody writes: its encoder waits in
# open) ignores one SIGINT, and stops at once, with 130, at the second.
mkfifo stuck.fifo
"$MEGABYTE" prepare -o stuck stuck.fifo >/dev/null 2>stuck.err &
pid=$!
sleep 0.5
kill -INT $pid
sleep 0.3
kill -INT $pid
for _ in $(seq 1 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
if kill -0 $pid 2>/dev/null; then kill -9 $pid; fail "a second SIGINT did not stop prepare"; fi
rc=0; wait $pid || rc=$?
[[ $rc -eq 130 ]] || { cat stuck.err; fail "stopped by a second SIGINT with $rc, expected 130"; }
grep -q "interrupted again" stuck.err || { cat stuck.err; fail "no word of the second interrupt"; }
[[ ! -e stuck ]] || fail "stuck exists after an interrupted prepare"
rm -rf .stuck.partial-* stuck.fifo   # the hidden temporary a forced stop may leave (documented)

echo "all bad-input checks passed"
