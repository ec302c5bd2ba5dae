#!/usr/bin/env bash
# prepare + info on real photos (mate-backgrounds) and real sounds (alsa-utils,
# sound-theme-freedesktop, asterisk), checking the encoders' geometry end to end.
source "$(dirname "$0")/lib.sh"

bash "$TESTS_DIR/../../data/fetch-debian.sh" "$WORK/dev" 2>/dev/null || true
photos=$(ls "$WORK/dev/photos" 2>/dev/null | head -4 | wc -l)
sounds=$(ls "$WORK/dev/sounds" 2>/dev/null | wc -l)
[[ $photos -ge 2 || $sounds -ge 2 ]] || skip "no Debian photos or sounds installed (run data/install-deps.sh)"

if [[ $photos -ge 2 ]]; then
  mkdir photos && for f in $(ls "$WORK/dev/photos" | head -4); do cp -L "$WORK/dev/photos/$f" photos/; done
  "$MEGABYTE" prepare -m image --image-size 32 --patch-size 48 -o im photos >im.txt
  cat im.txt
  grep -q "32x32 RGB, patch-scan order, patch size 48 = 4x4 pixels" im.txt || fail "image encoder line"
  total=$(zstd -q -dc im/*.zst | wc -c)
  [[ $total -eq $((4 * 32 * 32 * 3)) ]] || fail "4 photos should give 4*32*32*3 bytes, got $total"
  grep -q "image_size: 32" im/dataset.yaml && grep -q "patch_size: 48" im/dataset.yaml || fail "manifest geometry"
  "$MEGABYTE" info --verify im >/dev/null
  # A MEGABYTE model must use the patches the dataset was scanned in; with them it trains.
  configs="$TESTS_DIR/../../configs"
  expect_fail 1 "patch-scanned for patches of 48 bytes" "$MEGABYTE" train "$configs/tiny-cpu.yaml" im -o r --set data.modality=image
  expect_fail 1 "holds image" "$MEGABYTE" train "$configs/tiny-cpu.yaml" im -o r
  "$MEGABYTE" -q train "$configs/tiny-cpu.yaml" im -o imrun --set data.modality=image --set model.patch_size=48 \
    --set model.context=3072 --set train.batch_size=2 --set train.steps=2 --set train.optimizer.warmup_steps=1 >/dev/null
  [[ -f imrun/checkpoints/step-00000002/model.safetensors ]] || fail "image training left no checkpoint"
fi

if [[ $sounds -ge 2 ]]; then
  "$MEGABYTE" prepare -m audio --sample-rate 8000 -o au "$WORK/dev/sounds" >au.txt
  cat au.txt
  grep -q "8000 Hz, pcm_s16le" au.txt || fail "audio encoder line"
  grep -q "sample_rate: 8000" au/dataset.yaml || fail "manifest rate"
  bytes=$(zstd -q -dc au/*.zst | wc -c)
  [[ $((bytes % 2)) -eq 0 && $bytes -gt 16000 ]] || fail "audio bytes $bytes: expected an even count of 16-bit samples"
  # The alsa test WAV "Front_Center" is 1.44 s at 48 kHz: at 8 kHz about 11,500 samples.
  if [[ -e "$WORK/dev/sounds/Front_Center.wav" ]]; then
    "$MEGABYTE" -q prepare -m audio --sample-rate 8000 -o one "$WORK/dev/sounds/Front_Center.wav" >/dev/null
    n=$(zstd -q -dc one/*.zst | wc -c)
    frames=$(( $(stat -L -c %s "$WORK/dev/sounds/Front_Center.wav") / 2 ))  # 16-bit mono at 48 kHz
    want=$(( frames / 6 * 2 ))
    (( n > want - 200 && n < want + 200 )) || fail "Front_Center: $n bytes, expected about $want"
  fi
fi
echo "all media checks passed"
