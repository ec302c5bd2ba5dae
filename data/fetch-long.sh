#!/usr/bin/env bash
# Make long documents for long-context work (configs/million-cpu.yaml) from Debian packages
# (installed by data/install-deps.sh) under data/dev/long/ (or the directory given as $1):
#   text/kjv.txt             the King James Bible as one document (4.3 MB), from bible-kjv
#   text/python-modules.py   the Python standard library's top-level modules, concatenated in
#                            name order (4.7 MB), from the python3 already installed
#   text/python-packages.py  its packages (every directory but the tests and data ones),
#                            concatenated in path order (5.4 MB): the validation split
#   validation.txt           the list for `megabyte prepare --val-files`
# Then: megabyte prepare -o data/dev/long.dataset --val-files data/dev/long/validation.txt \
#         data/dev/long/text
# Each document is one file, so a window of up to a million bytes reads one text end to end.
set -euo pipefail

out=${1:-"$(cd "$(dirname "$0")" && pwd)/dev/long"}
mkdir -p "$out/text"
tmp=$(mktemp -d "$out/.long.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

command -v bible >/dev/null || { echo "fetch-long: 'bible' not found; run data/install-deps.sh" >&2; exit 1; }
bible Gen1:1-Rev22:21 >"$tmp/kjv.txt"

lib=$(python3 -c 'import os; print(os.path.dirname(os.__file__))')
find "$lib" -maxdepth 1 -name '*.py' -print0 | LC_ALL=C sort -z | xargs -0 cat >"$tmp/python-modules.py"
find "$lib" -mindepth 2 -name '*.py' \
  -not -path "$lib/test/*" -not -path "$lib/*/test/*" -not -path "$lib/*/tests/*" \
  -not -path "$lib/encodings/*" -not -path "$lib/pydoc_data/*" -not -path "$lib/site-packages/*" \
  -not -path "$lib/dist-packages/*" -not -path "$lib/lib2to3/*" -print0 |
  LC_ALL=C sort -z | xargs -0 cat >"$tmp/python-packages.py"

for f in kjv.txt python-modules.py python-packages.py; do mv -f "$tmp/$f" "$out/text/$f"; done
echo "$out/text/python-packages.py" >"$out/validation.txt"
sizes=$(cd "$out/text" && du -b kjv.txt python-modules.py python-packages.py |
  awk '{printf "%s%s %.1f MB", sep, $2, $1 / 1e6; sep = ", "}')
echo "fetch-long: $sizes in $out/text" >&2
