#!/usr/bin/env bash
# The whole test suite from a fresh clone on Debian 12: install what is needed, build with
# warnings as errors (the CUDA backend too, when nvcc is present), run `meson test`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash data/install-deps.sh
[[ -x /usr/local/cuda/bin/nvcc ]] && export PATH="$PATH:/usr/local/cuda/bin"
[[ -d build-test ]] || meson setup build-test --buildtype=release -Dwerror=true
ninja -C build-test
meson test -C build-test --print-errorlogs "$@"
