#!/usr/bin/env bash
# The main job, end to end, from a fresh clone on Debian 12: install what is needed, build,
# make real text from Debian's bible-kjv, prepare it as a dataset, describe it, train the tiny
# MEGABYTE of configs/tiny-cpu.yaml on it on the CPU (about a minute on an idle 2-core
# machine), score it the paper's three ways, and sample from it.
set -euo pipefail
cd "$(dirname "$0")/.."

bash data/install-deps.sh
[[ -d build ]] || meson setup build --buildtype=release
ninja -C build
bash data/fetch-debian.sh data/dev

rm -rf data/dev/kjv.dataset
./build/tools/megabyte prepare --modality text -o data/dev/kjv.dataset data/dev/kjv
./build/tools/megabyte info --verify data/dev/kjv.dataset

# A run directory holds one run: start afresh each time the demo runs.
rm -rf runs/kjv-tiny
./build/tools/megabyte train configs/tiny-cpu.yaml data/dev/kjv.dataset -o runs/kjv-tiny
./build/tools/megabyte info runs/kjv-tiny
./build/tools/megabyte eval runs/kjv-tiny data/dev/kjv.dataset
./build/tools/megabyte eval runs/kjv-tiny data/dev/kjv.dataset --stride 256
./build/tools/megabyte eval runs/kjv-tiny data/dev/kjv.dataset --strided
./build/tools/megabyte sample runs/kjv-tiny --prompt 'And God said, ' --bytes 300 --temperature 0.8 --seed 7
