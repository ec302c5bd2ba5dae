#!/usr/bin/env bash
# What to run when a GPU is at hand, in phases short enough for a borrowed machine (each well
# under ten minutes on an H100 with 16 cores), every result written under OUTDIR:
#
#   bash tests/gpu/first-run.sh PHASE [OUTDIR]     (OUTDIR: default $OUT if set, else gpu-run)
#
#   build     configure build-gpu (CUDA required) and build it; nvidia-smi's report
#   suite     the gpu parity suite (meson test --suite gpu's binary, every case)
#   bench     megabyte bench on the GPU: bench-cpu.yaml and paper-pg19.yaml training (bytes/s,
#             MFU, peak device memory) beside their --memory plans, and cached generation
#   sanitize  the op tests under compute-sanitizer memcheck, then racecheck
#   all       the four in order
#
# Each step's output goes to OUTDIR/STEP.log and its exit status to OUTDIR/summary.txt; a
# failing step does not stop the next, so one session gathers everything. The figures for an
# issue note are in the bench logs (--json lines).
set -uo pipefail
cd "$(dirname "$0")/../.."

phase=${1:-}
out=${2:-${OUT:-gpu-run}}
case $phase in build|suite|bench|sanitize|all) ;; *)
  echo "usage: bash tests/gpu/first-run.sh build|suite|bench|sanitize|all [OUTDIR]" >&2; exit 2 ;;
esac
mkdir -p "$out"
export PATH="$PATH:/usr/local/cuda/bin"
megabyte=build-gpu/tools/megabyte

# step NAME SECONDS COMMAND...: runs COMMAND with a time limit, logs it, records its status.
step() {
  local name=$1 limit=$2; shift 2
  echo "== $name: $*"
  local start=$SECONDS rc=0
  timeout "$limit" "$@" >"$out/$name.log" 2>&1 || rc=$?
  echo "$name: exit $rc in $((SECONDS - start)) s" | tee -a "$out/summary.txt"
}

run_build() {
  nvidia-smi >"$out/nvidia-smi.txt" 2>&1
  if [[ ! -d build-gpu ]]; then
    step setup 300 meson setup build-gpu --buildtype=release -Dcuda=enabled -Dwerror=true
  fi
  step build 540 ninja -C build-gpu
}

run_suite() {
  step gpu-suite 540 build-gpu/tests/gpu/gpu_tests --no-version --force-colors=false
  # Two GPUs over NCCL (says SKIP with fewer); MEGABYTE_MPI as the build found MPI.
  local mpi=no
  grep -q "MPI *: True\|MPI *: YES" build-gpu/meson-logs/meson-log.txt 2>/dev/null && mpi=yes
  step gpu-nccl 300 env MEGABYTE="$megabyte" TESTS_DIR="$PWD/tests/gpu" MEGABYTE_MPI=$mpi \
    bash tests/gpu/test_nccl.sh
}

run_bench() {
  for config in bench-cpu paper-pg19; do
    step "memory-$config" 60 "$megabyte" bench --config "configs/$config.yaml" --device cuda --memory --json
    step "train-$config" 240 "$megabyte" bench --config "configs/$config.yaml" --device cuda --seconds 20 --json
  done
  step train-bench-cpu-fp32 120 "$megabyte" bench --config configs/bench-cpu.yaml --device cuda \
    --precision fp32 --seconds 20 --json
  step generate-bench-cpu 240 "$megabyte" bench --config configs/bench-cpu.yaml --device cuda \
    --set model.context=8192 --generate --batch 8 --seconds 10 --json
}

run_sanitize() {
  local args=(--no-version --force-colors=false --test-suite-exclude=whole-model)
  step memcheck 540 compute-sanitizer --tool memcheck --error-exitcode 1 build-gpu/tests/gpu/gpu_tests "${args[@]}"
  step racecheck 540 compute-sanitizer --tool racecheck --error-exitcode 1 build-gpu/tests/gpu/gpu_tests \
    "${args[@]}" '--test-case-exclude=gpu determinism*'
}

case $phase in
  build) run_build ;;
  suite) run_suite ;;
  bench) run_bench ;;
  sanitize) run_sanitize ;;
  all) run_build; run_suite; run_bench; run_sanitize ;;
esac
echo "results in $out (summary.txt)"
