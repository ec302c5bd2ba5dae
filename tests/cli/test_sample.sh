#!/usr/bin/env bash
# megabyte sample end to end: a tiny model trained for a few steps samples text to stdout and
# to files, reproducibly by seed; bad requests are refused with one clear line; Ctrl-C leaves
# only complete files; and, where Debian's photos and sounds are installed, image and audio
# models write a PNG and a WAV of the right geometry.
source "$(dirname "$0")/lib.sh"
CONFIGS="$TESTS_DIR/../../configs"

# Real text: the Python standard library's sources, which every Debian machine has.
python3 -c 'import glob, os; print("\n".join(sorted(glob.glob(os.path.dirname(os.__file__) + "/*.py"))[:40]))' >pylist.txt
"$MEGABYTE" -q prepare -o text.ds - <pylist.txt >/dev/null
quick=(--set train.steps=3 --set train.eval_every=0 --set train.eval_bytes=4096 --set train.batch_size=2
       --set train.optimizer.warmup_steps=1)
"$MEGABYTE" -q train "$CONFIGS/tiny-cpu.yaml" text.ds -o run "${quick[@]}" >/dev/null
T=512   # tiny-cpu's model.context

# 1. To stdout: the prompt, then the new bytes.
prompt='def main():'
"$MEGABYTE" -q sample run --prompt "$prompt" --bytes 40 >s1.txt
[[ $(stat -c %s s1.txt) -eq $((${#prompt} + 40)) ]] || fail "stdout sample is $(stat -c %s s1.txt) bytes, expected $((${#prompt} + 40))"
[[ $(head -c ${#prompt} s1.txt) == "$prompt" ]] || fail "the sample does not start with the prompt"
"$MEGABYTE" -q sample run --prompt "$prompt" --bytes 40 --continuation >cont.txt
cmp cont.txt <(tail -c 40 s1.txt) || fail "--continuation is not the sample without its prompt"
# The prompt from a file and from stdin is the same prompt.
printf '%s' "$prompt" >prompt.txt
"$MEGABYTE" -q sample run --prompt-file prompt.txt --bytes 40 | cmp - s1.txt || fail "--prompt-file differs from --prompt"
"$MEGABYTE" -q sample run --prompt-file - --bytes 40 <prompt.txt | cmp - s1.txt || fail "--prompt-file - differs from --prompt"

# 2. To a file: the same bytes (default seed), and a line on stderr with the speed.
"$MEGABYTE" sample run --prompt "$prompt" --bytes 40 -o o1.txt 2>o1.err
cmp s1.txt o1.txt || fail "-o differs from stdout for the same seed"
grep -q "bytes/s" o1.err || fail "no speed reported on stderr"

# 3. Seeds: the same seed gives the same bytes, another seed other bytes; greedy ignores it.
"$MEGABYTE" -q sample run --bytes 200 --seed 7 -o a.txt
"$MEGABYTE" -q sample run --bytes 200 --seed 7 -o b.txt
"$MEGABYTE" -q sample run --bytes 200 --seed 8 -o c.txt
cmp a.txt b.txt || fail "the same seed gave different samples"
! cmp -s a.txt c.txt || fail "different seeds gave the same 200 bytes"
"$MEGABYTE" -q sample run --bytes 100 --temperature 0 --seed 1 -o g1.txt
"$MEGABYTE" -q sample run --bytes 100 --temperature 0 --seed 2 -o g2.txt
cmp g1.txt g2.txt || fail "greedy sampling is not deterministic"
"$MEGABYTE" -q sample run --bytes 100 --top-k 1 -o k1.txt
cmp g1.txt k1.txt || fail "--top-k 1 is not greedy"
"$MEGABYTE" -q sample run --bytes 100 --top-k 20 --top-p 0.9 --temperature 0.8 -o mixed.txt
[[ $(stat -c %s mixed.txt) -eq 100 ]] || fail "top-k/top-p sample has the wrong length"

# 4. Several samples: numbered files; sample 1 is the sample of -n 1 with that seed. That
# holds on the CPU, whose products give the same bits for one row as for two; the manual
# promises the same bytes only for as many samples side by side (-n 1 runs one, -n 2 two; a
# GPU may round a batch of one otherwise), so this part names the CPU.
"$MEGABYTE" -q sample run --device cpu --bytes 200 --seed 7 -o a1.txt
"$MEGABYTE" -q sample run --device cpu --bytes 200 --seed 7 -n 2 -o out.txt
[[ -f out-1.txt && -f out-2.txt && ! -e out.txt ]] || fail "-n 2 -o out.txt should write out-1.txt and out-2.txt"
cmp out-1.txt a1.txt || fail "sample 1 of -n 2 differs from the single sample of the same seed"
! cmp -s out-1.txt out-2.txt || fail "the two samples are the same"
"$MEGABYTE" -q sample run --bytes 20 -n 2 >two.txt
[[ $(grep -c '^==> sample [12] of 2 <==$' two.txt) -eq 2 ]] || fail "stdout does not separate the samples"
# Samples generated side by side (--batch), with a last group smaller than the batch: every
# sample complete, reproducible for the same seed and batch, and each its own.
"$MEGABYTE" -q sample run --bytes 50 --seed 3 -n 5 --batch 2 -o grp.txt
"$MEGABYTE" -q sample run --bytes 50 --seed 3 -n 5 --batch 2 -o again.txt
for i in 1 2 3 4 5; do
  [[ $(stat -c %s grp-$i.txt) -eq 50 ]] || fail "grp-$i.txt is $(stat -c %s grp-$i.txt) bytes, expected 50"
  cmp grp-$i.txt again-$i.txt || fail "sample $i of --batch 2 differs between two runs of one seed"
done
[[ $(cat grp-*.txt | md5sum) != $(cat grp-1.txt grp-1.txt grp-1.txt grp-1.txt grp-1.txt | md5sum) ]] ||
  fail "the batched samples are all the same"
! cmp -s grp-4.txt grp-5.txt || fail "samples 4 and 5 (different groups) are the same"
"$MEGABYTE" -q sample run --bytes 20 -n 3 --batch 2 >three.txt
[[ $(grep -c '^==> sample [123] of 3 <==$' three.txt) -eq 3 ]] || fail "stdout lacks a batched sample"
grep -n '^==> sample' three.txt | cut -d: -f2- | tr '\n' ' ' | grep -q '1 of 3.*2 of 3.*3 of 3' ||
  fail "batched samples are printed out of order"
expect_fail 2 "--batch" "$MEGABYTE" sample run --batch 0

# 5. The context caps the length.
"$MEGABYTE" sample run --bytes 600 -o capped.txt 2>capped.err
[[ $(stat -c %s capped.txt) -eq $T ]] || fail "--bytes 600 should be capped at $T"
grep -q "capped at $T" capped.err || fail "the cap is not reported"
"$MEGABYTE" -q sample run --prompt "$prompt" --bytes 600 -o capped2.txt 2>/dev/null
[[ $(stat -c %s capped2.txt) -eq $T ]] || fail "prompt + --bytes should be capped at $T"

# 6. Refused, with one line each.
head -c 600 /dev/zero | tr '\0' 'a' >long.txt
expect_fail 1 "context is $T bytes" "$MEGABYTE" sample run --prompt-file long.txt
expect_fail 1 "context is $T bytes" "$MEGABYTE" sample run --prompt-file - <long.txt
expect_fail 1 "no such checkpoint" "$MEGABYTE" sample nowhere
expect_fail 1 "missing.txt: cannot open" "$MEGABYTE" sample run --prompt-file missing.txt
expect_fail 1 "are for image models" "$MEGABYTE" sample run --image-size 32 -o x.png
expect_fail 1 "are for audio models" "$MEGABYTE" sample run --seconds 1
expect_fail 2 "top-p" "$MEGABYTE" sample run --top-p 0
expect_fail 2 "excludes" "$MEGABYTE" sample run --prompt a --prompt-file prompt.txt
[[ ! -e x.png ]] || fail "a refused sample wrote a file"

# 6b. Ctrl-C while waiting for a prompt on standard input.
expect_interrupted_on_stdin "$MEGABYTE" sample run --prompt-file - -o waiting.txt
[[ ! -e waiting.txt ]] || fail "an interrupted sample wrote a file"

# 7. Ctrl-C: complete samples stay, the unfinished one is not written, nothing half-written.
mkdir many
"$MEGABYTE" -q sample run -n 100000 -j 1 -o many/s.txt 2>many.err &
pid=$!
for _ in $(seq 1 600); do [[ -e many/s-2.txt ]] && break; sleep 0.05; done
kill -INT $pid
rc=0; wait $pid || rc=$?
[[ $rc -eq 130 ]] || { cat many.err; fail "interrupted sampling exited $rc, expected 130"; }
for f in many/*; do
  [[ $(stat -c %s "$f") -eq $T ]] || fail "$f is $(stat -c %s "$f") bytes: a half-written sample"
done
expect_no_partial many

# 8. Images (a 32x32 image in 4x4-pixel patches: P = 48, T = 3072) and sounds, where installed.
bash "$TESTS_DIR/../../data/fetch-debian.sh" "$WORK/dev" 2>/dev/null || true
photos=$(ls "$WORK/dev/photos" 2>/dev/null | wc -l)
sounds=$(ls "$WORK/dev/sounds" 2>/dev/null | wc -l)
if [[ $photos -ge 2 ]]; then
  mkdir photos && for f in $(ls "$WORK/dev/photos" | head -4); do cp -L "$WORK/dev/photos/$f" photos/; done
  "$MEGABYTE" -q prepare -m image --image-size 32 --patch-size 48 -o im photos >/dev/null
  "$MEGABYTE" -q train "$CONFIGS/tiny-cpu.yaml" im -o imrun --set data.modality=image --set model.patch_size=48 \
    --set model.context=3072 "${quick[@]}" --set train.steps=2 >/dev/null
  "$MEGABYTE" -q sample imrun --image-size 32 -o img.png -j 1
  png_size() {
    python3 - "$1" <<'EOF'
import struct, sys
d = open(sys.argv[1], "rb").read()
assert d[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
n, kind = struct.unpack(">I4s", d[8:16])
assert kind == b"IHDR" and n == 13, "no IHDR chunk first"
w, h, depth, color = struct.unpack(">IIBB", d[16:26])
print(w, h, depth, color)
EOF
  }
  [[ $(png_size img.png) == "32 32 8 2" ]] || fail "img.png is not a 32x32 RGB PNG: $(png_size img.png)"
  first=$(ls photos | head -1)
  "$MEGABYTE" -q sample imrun --image-size 32 --prompt-file "photos/$first" --prompt-rows 16 -n 2 -o top.png -j 1
  [[ $(png_size top-1.png) == "32 32 8 2" && $(png_size top-2.png) == "32 32 8 2" ]] || fail "prompted images"
  expect_fail 1 "--prompt-rows" "$MEGABYTE" sample imrun --image-size 32 --prompt-file "photos/$first" --prompt-rows 6 -o x.png
  expect_fail 1 "more than the model's context" "$MEGABYTE" sample imrun --image-size 64 -o x.png
  # Training recorded the dataset's image size and scan patch: they are the defaults.
  "$MEGABYTE" -q sample imrun -o recorded.png -j 1
  [[ $(png_size recorded.png) == "32 32 8 2" ]] || fail "sampling with the recorded geometry"
  expect_fail 1 "-o" "$MEGABYTE" sample imrun --image-size 32
  expect_fail 1 "prompt.txt" "$MEGABYTE" sample imrun --image-size 32 --prompt-file prompt.txt -o x.png
  expect_fail 1 "not 3*p*p" "$MEGABYTE" sample imrun --image-size 32 --patch-size 50 -o x.png
  [[ ! -e x.png ]] || fail "a refused image sample wrote a file"
else
  echo "note: no Debian photos installed; image sampling not tested"
fi
if [[ $sounds -ge 2 ]]; then
  "$MEGABYTE" -q prepare -m audio --sample-rate 8000 -o au "$WORK/dev/sounds" >/dev/null
  "$MEGABYTE" -q train "$CONFIGS/tiny-cpu.yaml" au -o aurun --set data.modality=audio --set model.context=2048 \
    "${quick[@]}" --set train.steps=2 >/dev/null
  "$MEGABYTE" -q sample aurun --seconds 0.1 --sample-rate 8000 -o a.wav -j 1
  # The rate recorded at training is the default.
  "$MEGABYTE" -q sample aurun --seconds 0.05 -o recorded.wav -j 1
  python3 -c 'import sys, wave; w = wave.open(sys.argv[1]); assert w.getframerate() == 8000, w.getframerate()' recorded.wav ||
    fail "recorded.wav is not at the dataset's 8000 Hz"
  python3 - a.wav <<'EOF' || fail "a.wav is not 0.1 s of 16-bit mono at 8000 Hz"
import sys, wave
head = open(sys.argv[1], "rb").read(12)
assert head[:4] == b"RIFF" and head[8:12] == b"WAVE", head
w = wave.open(sys.argv[1])
assert (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()) == (8000, 1, 2, 800), \
    (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes())
EOF
  snd=$(ls "$WORK/dev/sounds" | head -1)
  "$MEGABYTE" -q sample aurun --seconds 0.1 --sample-rate 8000 --prompt-file "$WORK/dev/sounds/$snd" \
    --prompt-seconds 0.05 -o b.wav -j 1
  python3 -c 'import sys, wave; assert wave.open(sys.argv[1]).getnframes() == 800' b.wav || fail "prompted b.wav"
  expect_fail 1 "are for audio models" "$MEGABYTE" sample run --sample-rate 8000
  expect_fail 1 "prompt.txt" "$MEGABYTE" sample aurun --seconds 0.1 --sample-rate 8000 --prompt-file prompt.txt -o x.wav
  expect_fail 1 "is text" "$MEGABYTE" sample aurun --prompt hello -o x.wav
else
  echo "note: no Debian sounds installed; audio sampling not tested"
fi
echo "all sample tests passed"
