#!/usr/bin/env bash
# Install what megabyte needs to build and test, and the Debian packages its dev data comes
# from. Debian 12; run as root (or with sudo). Installs only what is missing.
# With --sanitizers, also what tests/run.sh's second build needs: clang with its sanitizer and
# libFuzzer runtimes, and the OpenMP runtime that clang links (tests/fuzz/README.md).
set -euo pipefail

build_packages=(
  build-essential meson ninja-build pkg-config cmake
  libcli11-dev libyaml-cpp-dev libzstd-dev zstd libxxhash-dev nlohmann-json3-dev
  libsndfile1-dev libsamplerate0-dev libstb-dev libdnnl-dev doctest-dev
  libopenmpi-dev openmpi-bin   # data-parallel training (mpirun); the MPI tests
)
# Real data for the demo and the end-to-end tests (see data/README.md).
data_packages=(
  bible-kjv mate-backgrounds alsa-utils sound-theme-freedesktop asterisk-core-sounds-en-wav
)

# The sanitizer and fuzz build (clang 14, as Debian 12 ships it; python3 makes seed files).
sanitizer_packages=(clang libclang-rt-14-dev libomp-14-dev python3)
wanted=("${build_packages[@]}" "${data_packages[@]}")
if [[ ${1:-} == --sanitizers ]]; then wanted+=("${sanitizer_packages[@]}"); fi

missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all packages present" >&2
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
