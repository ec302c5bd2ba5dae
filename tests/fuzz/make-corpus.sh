#!/usr/bin/env bash
# Makes the fuzz targets' seed corpora under OUTDIR/<target>/ from what the tests already use:
# small datasets written by `megabyte prepare` (text, images, audio), a checkpoint of a
# micro model written by `megabyte train`, the configs in configs/, images written by
# stb_image_write (fuzz_seed_images) and sounds written by Python's standard library. Nothing
# binary is kept in git; every seed is a few kB at most, so that the fuzzers run fast.
# Usage: make-corpus.sh OUTDIR   (env: MEGABYTE, FUZZ_SEED_IMAGES: the built programs)
set -euo pipefail
out=$1
: "${MEGABYTE:?set MEGABYTE to the megabyte binary}" "${FUZZ_SEED_IMAGES:?}"
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mb-corpus.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# The sanitizers' own checks stay on; a leak in a short-lived `megabyte` run is reported too.
export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1}"
mb() { "$MEGABYTE" "$@" -j 1 >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }; }

rm -rf "$out"
targets=(manifest shard_index shard safetensors checkpoint config image audio sample_prompt)
for t in "${targets[@]}"; do mkdir -p "$out/$t"; done

# Inputs: text documents (every byte value), images, sounds.
mkdir -p "$tmp/text" "$tmp/images" "$tmp/sounds"
for i in 1 2 3 4 5 6; do
  { printf 'document %d\n' "$i"; head -c $((i * 300)) "$src/README.md"; printf '\0\377\n'; } \
    >"$tmp/text/doc$i.txt"
done
"$FUZZ_SEED_IMAGES" "$tmp/images"
printf 'P6\n4 3\n255\n' >"$tmp/images/4x3.ppm"; head -c 36 /dev/zero | tr '\0' '\200' >>"$tmp/images/4x3.ppm"
printf 'P5\n3 2\n255\n\001\002\003\004\005\006' >"$tmp/images/3x2.pgm"
# The smallest GIF: one transparent pixel (43 bytes).
printf 'GIF89a\001\000\001\000\200\000\000\000\000\000\377\377\377!\371\004\001\000\000\000\000,\000\000\000\000\001\000\001\000\000\002\002D\001\000;' \
  >"$tmp/images/1x1.gif"
python3 - "$tmp/sounds" <<'PY'
import math, struct, sys, wave
d = sys.argv[1]
def tone(n, rate, f):
    return [int(12000 * math.sin(2 * math.pi * f * i / rate)) for i in range(n)]
for rate, channels, width, n in [(8000, 1, 2, 400), (16000, 2, 2, 300), (44100, 1, 1, 500),
                                 (22050, 2, 3, 200), (48000, 1, 4, 200)]:
    s = tone(n * channels, rate, 440)
    if width == 1: frames = bytes((x >> 8) + 128 for x in s)
    elif width == 2: frames = struct.pack('<%dh' % len(s), *s)
    elif width == 3: frames = b''.join(struct.pack('<i', x << 8)[:3] for x in s)
    else: frames = struct.pack('<%di' % len(s), *(x << 16 for x in s))
    with wave.open('%s/%dhz-%dch-%dbit.wav' % (d, rate, channels, 8 * width), 'wb') as w:
        w.setnchannels(channels); w.setsampwidth(width); w.setframerate(rate); w.writeframes(frames)
PY
# Ogg Vorbis: the smallest sounds of the freedesktop theme (the test data's).
for f in /usr/share/sounds/freedesktop/stereo/audio-volume-change.oga \
         /usr/share/sounds/freedesktop/stereo/device-added.oga; do
  [[ -f $f && $(stat -c %s "$f") -le 16384 ]] && cp "$f" "$tmp/sounds/"
done

# Datasets: several shards of several frames each (tiny --shard-size and --frame-size).
mb prepare -o "$tmp/ds-text" --shard-size 2K --frame-size 700 --val-fraction 0.3 "$tmp/text"
mb prepare -m image --image-size 8 --patch-size 12 -o "$tmp/ds-image" --frame-size 200 \
  --val-fraction 0.3 "$tmp/images"
mb prepare -m audio --sample-rate 8000 -o "$tmp/ds-audio" --frame-size 500 --shard-size 2K \
  --val-fraction 0 "$tmp/sounds"
n=0
for ds in "$tmp"/ds-*; do
  cp "$ds/dataset.yaml" "$out/manifest/$(basename "$ds").yaml"
  for shard in "$ds"/*.zst; do
    n=$((n + 1))
    size=$(stat -c %s "$shard")
    [[ $size -le 4096 ]] && cp "$shard" "$out/shard/$n.zst"
    # The index: the payload of the skippable frame at the end, its size in the footer.
    payload=$(python3 -c 'import struct,sys; f=open(sys.argv[1],"rb"); f.seek(-16,2); print(struct.unpack("<Q", f.read(8))[0])' "$shard")
    { printf '\001'; tail -c "$payload" "$shard"; } >"$out/shard_index/$n-repair"
    { printf '\000'; tail -c "$payload" "$shard"; } >"$out/shard_index/$n"
  done
done

# A checkpoint of a micro model (a few kB): model.safetensors, optimizer.safetensors.
mb train "$src/configs/tiny-cpu.yaml" "$tmp/ds-text" -o "$tmp/run" \
  --set model.context=16 --set model.patch_size=4 --set model.global.dim=4 \
  --set model.global.layers=1 --set model.global.heads=1 --set model.local.dim=4 \
  --set model.local.layers=1 --set model.local.heads=1 --set model.ffn_multiplier=1 \
  --set train.steps=1 --set train.optimizer.warmup_steps=0 --set train.batch_size=1 --set train.eval_every=1 --set train.eval_bytes=16
ck=$(ls -d "$tmp"/run/checkpoints/step-* | tail -1)
cp "$ck/model.safetensors" "$out/safetensors/model.safetensors"
cp "$ck/optimizer.safetensors" "$out/safetensors/optimizer.safetensors"
python3 - "$ck" "$out/checkpoint/micro" "$out/safetensors" <<'PY'
import json, struct, sys
ck, dest, st = sys.argv[1:]
m = open(ck + '/model.safetensors', 'rb').read()
o = open(ck + '/optimizer.safetensors', 'rb').read()
open(dest, 'wb').write(struct.pack('<I', len(m)) + m + o)
# Small hand-made files: other dtypes, a scalar, an empty tensor, no metadata.
def st_file(header, data):
    h = json.dumps(header).encode()
    return struct.pack('<Q', len(h)) + h + data
open(st + '/dtypes.safetensors', 'wb').write(st_file(
    {'a': {'dtype': 'BF16', 'shape': [2], 'data_offsets': [0, 4]},
     'b': {'dtype': 'F32', 'shape': [], 'data_offsets': [4, 8]},
     'c': {'dtype': 'I64', 'shape': [0, 3], 'data_offsets': [8, 8]},
     'd': {'dtype': 'F32', 'shape': [1, 2], 'data_offsets': [8, 16]}}, bytes(range(16))))
open(st + '/metadata.safetensors', 'wb').write(st_file(
    {'__metadata__': {'format': 'pt'}, 'x': {'dtype': 'U8', 'shape': [3], 'data_offsets': [0, 3]}},
    b'abc'))
PY

# Configs: every file in configs/, and with overrides.
cp "$src"/configs/*.yaml "$out/config/"
{ cat "$src/configs/tiny-cpu.yaml"; printf -- '--set\nmodel.patch_size=4\ntrain.lr=3e-4\nmodel.kind=transformer\n'; } \
  >"$out/config/tiny-with-sets"
{ cat "$ck/../../config.yaml"; printf -- '--set\ntrain.recompute=all\ndata.modality=image\n'; } \
  >"$out/config/micro-with-sets"

# Images, each behind the byte that picks the geometry (fuzz_image.cpp), and sounds behind
# the byte that picks the rate.
i=0
for f in "$tmp"/images/*; do
  i=$((i + 1))
  [[ $(stat -c %s "$f") -le 8192 ]] || continue
  { printf "\\$(printf %03o $((i % 16)))"; cat "$f"; } >"$out/image/$(basename "$f")"
  { printf '\001'; cat "$f"; } >"$out/sample_prompt/$(basename "$f")"
done
for f in "$tmp"/sounds/*; do
  i=$((i + 1))
  { printf "\\$(printf %03o $((i % 4)))"; cat "$f"; } >"$out/audio/$(basename "$f")"
  { printf '\002'; cat "$f"; } >"$out/sample_prompt/$(basename "$f")"
done
printf '\000And God said, ' >"$out/sample_prompt/text"
{ printf '\004'; head -c 200 "$src/README.md"; } >"$out/sample_prompt/text-long"

touch "$out/.complete"
echo "make-corpus: $(find "$out" -type f ! -name .complete | wc -l) seeds in $out" >&2
