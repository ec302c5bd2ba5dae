#!/usr/bin/env bash
# Make the small real dev datasets from Debian packages (installed by data/install-deps.sh)
# under data/dev/ (or the directory given as $1):
#   kjv/     the King James Bible, one file per book (66 files, 4.3 MB), from bible-kjv
#   photos/  nature photographs from mate-backgrounds
#   sounds/  speech (asterisk, 8 kHz WAV), alsa test WAVs (48 kHz), freedesktop Ogg sounds
set -euo pipefail

out=${1:-"$(cd "$(dirname "$0")" && pwd)/dev"}
mkdir -p "$out"

if [[ ! -f "$out/kjv/66-Revelation_of_John.txt" ]]; then
  command -v bible >/dev/null || { echo "fetch-debian: 'bible' not found; run data/install-deps.sh" >&2; exit 1; }
  tmp=$(mktemp -d "$out/.kjv.XXXXXX")
  # `bible` prints chapters headed "Book N"; a new book starts where the name changes.
  bible Gen1:1-Rev22:21 | awk -v dir="$tmp" '
    /^[^ ].* [0-9]+$/ { book = $0; sub(/ [0-9]+$/, "", book)
                        if (book != cur) { cur = book; n++; name = book; gsub(/ /, "_", name)
                                           if (f != "") close(f)
                                           f = sprintf("%s/%02d-%s.txt", dir, n, name) } }
    f != "" { print > f }'
  rm -rf "$out/kjv" && mv "$tmp" "$out/kjv"
fi

mkdir -p "$out/photos" "$out/sounds"
for f in /usr/share/backgrounds/mate/nature/*.jpg; do
  [[ -e "$f" ]] && ln -sf "$f" "$out/photos/"
done
for f in /usr/share/sounds/alsa/*.wav /usr/share/sounds/freedesktop/stereo/*.oga \
         /usr/share/asterisk/sounds/en/{hello-world,demo-congrats,demo-thanks,vm-intro,conf-onlyperson}.wav; do
  [[ -e "$f" ]] && ln -sf "$f" "$out/sounds/"
done

echo "fetch-debian: $(ls "$out/kjv" | wc -l) KJV books, $(ls "$out/photos" | wc -l) photos, $(ls "$out/sounds" | wc -l) sounds in $out" >&2
