#!/usr/bin/env bash
# Two GPUs, two ranks (suite gpu): data-parallel training joined by NCCL is the run of one GPU
# (up to float rounding, as tests/cli/test_mpi.sh checks on the CPU), with and without a
# sharded optimizer, and a run resumes across the two. Skipped, in one line, with fewer than
# two GPUs or without MPI.
set -euo pipefail
: "${MEGABYTE:?set MEGABYTE to the megabyte binary}"
[[ ${MEGABYTE_MPI:-no} == yes ]] || { echo "SKIP: built without MPI (meson -Dmpi)"; exit 77; }
command -v mpirun >/dev/null || { echo "SKIP: no mpirun"; exit 77; }
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
[[ $gpus -ge 2 ]] || { echo "SKIP: NCCL needs two GPUs, this machine has ${gpus:-0}"; exit 77; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mb-nccl.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail() { echo "FAIL: $*" >&2; exit 1; }
CONFIGS="$TESTS_DIR/../../configs"
COMPARE="$TESTS_DIR/../cli/compare_checkpoints.py"

python3 -c 'import glob; print("\n".join(sorted(glob.glob("/usr/lib/python3*/[a-m]*.py"))[:40]))' >list.txt
"$MEGABYTE" -q prepare -o text.ds - <list.txt >/dev/null
small=(--device cuda --precision fp32 --set model.context=256 --set model.global.dim=64
       --set model.global.layers=2 --set model.global.heads=4 --set model.local.dim=64
       --set model.local.layers=1 --set model.local.heads=2 --set model.dropout=0.1
       --set train.batch_size=4 --set train.grad_accumulation=2 --set train.steps=6
       --set train.checkpoint_every=3 --set train.eval_every=3 --set train.eval_bytes=16384
       --set train.optimizer.warmup_steps=2)
train() { "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds "${small[@]}" "$@"; }
final=checkpoints/step-00000006

train -o one >/dev/null 2>one.err || { cat one.err >&2; fail "one GPU failed"; }
mpirun -np 2 "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds "${small[@]}" -o two \
  >/dev/null 2>two.err || { cat two.err >&2; fail "two GPUs failed"; }
grep -q 'gradients summed over NCCL' two.err || { cat two.err >&2; fail "NCCL was not used"; }
python3 "$COMPARE" one/$final two/$final --tolerance 2e-3
mpirun -np 2 "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds "${small[@]}" -o zero \
  --set train.zero=1 >/dev/null 2>zero.err || { cat zero.err >&2; fail "zero 1 failed"; }
python3 "$COMPARE" two/$final zero/$final --tolerance 0
mpirun -np 2 "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds "${small[@]}" -o r --max-steps 3 \
  >/dev/null 2>&1
train -o r --resume >/dev/null 2>&1 || fail "resume 2 GPUs -> 1 failed"
python3 "$COMPARE" one/$final r/$final --tolerance 2e-3
echo "two GPUs over NCCL: the run of one GPU"
