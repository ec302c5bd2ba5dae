#!/usr/bin/env bash
# megabyte train as a job of several processes under mpirun (DESIGN.md, decision 9): the same
# config on 2 ranks and on 1 process is the same run up to float rounding (the same windows,
# the same dropout masks), with and without a sharded optimizer (train.zero 1); a run resumes
# across process counts; a rank killed with SIGKILL ends the job and the run resumes from its
# last checkpoint; SIGINT to mpirun stops every rank with one checkpoint; bad inputs (ranks
# that disagree, a RUNDIR one rank cannot write, a step
# that cannot be shared) end the job with one clear line.
source "$(dirname "$0")/lib.sh"
CONFIGS="$TESTS_DIR/../../configs"
COMPARE="$TESTS_DIR/compare_checkpoints.py"

[[ ${MEGABYTE_MPI:-no} == yes ]] || skip "built without MPI (meson -Dmpi)"
command -v mpirun >/dev/null || skip "no mpirun (install openmpi-bin: data/install-deps.sh)"
# CI runs as root in a container; OpenMPI refuses root unless told, and 2 cores must take
# 3 ranks in the bad-input case.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
MPIRUN=(mpirun -np 2)
# Under the sanitizers (tests/run.sh), whole stacks on every allocation, so that LeakSanitizer
# can match what Open MPI leaves allocated to its libraries (tests/lsan.supp).
[[ -z ${MB_SANITIZE:-} ]] || export ASAN_OPTIONS="${ASAN_OPTIONS:-}:fast_unwind_on_malloc=0"

python3 -c 'import glob; print("\n".join(sorted(glob.glob("/usr/lib/python3*/[a-m]*.py"))[:40]))' >list.txt
"$MEGABYTE" -q prepare -o text.ds - <list.txt >/dev/null

# Accumulation 2 of batch 4: a step of 8 windows, 4 per rank; dropout on, so a window that
# drew other masks (or another window) would show at once.
small=(--set model.context=256 --set model.global.dim=16 --set model.global.layers=2
       --set model.global.heads=4 --set model.local.dim=64 --set model.local.layers=1
       --set model.local.heads=2 --set model.dropout=0.1 --set train.batch_size=4
       --set train.grad_accumulation=2 --set train.steps=6 --set train.eval_every=3
       --set train.checkpoint_every=3 --set train.log_every=1 --set train.eval_bytes=16384
       --set train.optimizer.warmup_steps=2)
train() { "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds "${small[@]}" "$@"; }
final=checkpoints/step-00000006

# The tolerance: the ranks add their halves of the gradient, then MPI adds the halves, where
# one process adds the micro-batches one after another, so the sums differ by fp32 rounding
# (~1e-7). Losses and gradient norms keep that size; the weights go through AdamW, whose
# division by sqrt(v) magnifies the rounding of a gradient near zero, so after 6 steps a
# tensor's values differ by up to ~2e-4 of its largest (seen: 1.5e-4). 2e-3 passes that and
# fails a run that is not the same (checked below with another seed: ~1e-1).
TOL=2e-3

# 1. 1 process (2 threads) and 2 ranks (1 thread each): the same run.
train -o one -j 2 >/dev/null 2>one.err
"${MPIRUN[@]}" "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds "${small[@]}" -o two -j 1 \
  >two.out 2>two.err || { cat two.err >&2; fail "2 ranks failed"; }
grep -q '2 processes share each step of 8 windows: 4 each' two.err || { cat two.err >&2; fail "no word of the shared step"; }
[[ $(grep -c '^step 6: train loss' two.out) -eq 1 ]] || fail "rank 0 alone should print the result"
python3 "$COMPARE" one/$final two/$final --tolerance $TOL
python3 - one/metrics.jsonl two/metrics.jsonl <<'PY' || fail "losses or gradient norms differ"
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:])
assert len(a) == len(b), (len(a), len(b))
for x, y in zip(a, b):
    for k in ("loss", "grad_norm", "val_bpb"):
        if k in x:
            assert abs(x[k] - y[k]) <= 1e-5 * abs(x[k]), (k, x, y)
print("losses, gradient norms and validation agree to 1e-5 over", len(a), "lines")
PY
echo "ok: 2 ranks = 1 process"
# The tolerance tells runs apart: another seed is far outside it.
"${MPIRUN[@]}" "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds "${small[@]}" -o other -j 1 \
  --set train.seed=7 >/dev/null 2>&1
if python3 "$COMPARE" one/$final other/$final --tolerance $TOL >/dev/null 2>&1; then
  fail "a run with another seed passes as the same run"
fi

# 2. A sharded optimizer (ZeRO-1) is the same arithmetic: the same run again, and on 1 process
# train.zero 1 is the unsharded run bit for bit.
"${MPIRUN[@]}" "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds "${small[@]}" -o zero2 -j 1 \
  --set train.zero=1 >/dev/null 2>zero2.err || { cat zero2.err >&2; fail "zero 1 on 2 ranks failed"; }
grep -q 'optimizer state sharded' zero2.err || fail "no word of the sharded optimizer"
python3 "$COMPARE" one/$final zero2/$final --tolerance $TOL
python3 "$COMPARE" two/$final zero2/$final --tolerance 0 || fail "zero 1 changes the 2-rank run"
echo "ok: train.zero 1"

# 3. Resume across process counts: 2 -> 1 and 1 -> 2 continue the same run.
"${MPIRUN[@]}" "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds "${small[@]}" -o a -j 1 \
  --max-steps 3 >/dev/null 2>&1
train -o a -j 2 --resume >/dev/null 2>a.err || { cat a.err >&2; fail "resume 2 -> 1 failed"; }
python3 "$COMPARE" one/$final a/$final --tolerance $TOL
train -o b -j 2 --set train.zero=1 --max-steps 3 >/dev/null 2>&1
"${MPIRUN[@]}" "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds "${small[@]}" -o b -j 1 \
  --set train.zero=1 --resume >/dev/null 2>b.err || { cat b.err >&2; fail "resume 1 -> 2 failed"; }
python3 "$COMPARE" one/$final b/$final --tolerance $TOL
echo "ok: resumed 2 -> 1 and 1 -> 2"

# 4. A rank killed with SIGKILL mid-run: the job ends non-zero within 30 s, the last complete
# checkpoint is intact, and --resume continues to the end.
long=(--set train.steps=400 --set train.checkpoint_every=5 --set train.eval_every=0)
"${MPIRUN[@]}" "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds "${small[@]}" "${long[@]}" \
  -o k -j 1 >/dev/null 2>k.err &
job=$!
for _ in $(seq 1 300); do [[ -d k/checkpoints/step-00000010 ]] && break; sleep 0.1; done
[[ -d k/checkpoints/step-00000010 ]] || { kill -9 $job; fail "no checkpoint within 30 s"; }
victim=$(pgrep -P $job -f megabyte | tail -1)
[[ -n $victim ]] || fail "no rank process found under mpirun"
kill -9 "$victim"
t0=$SECONDS
rc=0
for _ in $(seq 1 300); do kill -0 $job 2>/dev/null || break; sleep 0.1; done
if kill -0 $job 2>/dev/null; then pkill -9 -P $job; kill -9 $job; fail "the job still runs 30 s after a rank died"; fi
wait $job || rc=$?
[[ $rc -ne 0 ]] || fail "the job ended 0 after a rank was killed"
echo "ok: a killed rank ended the job in $((SECONDS - t0)) s (mpirun $rc)"
"$MEGABYTE" -q eval k text.ds --split validation --max-bytes 4096 >/dev/null ||
  fail "the last checkpoint does not load"
"${MPIRUN[@]}" "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds "${small[@]}" "${long[@]}" \
  -o k -j 1 --resume --set train.steps=30 >/dev/null 2>k2.err && fail "a resume with another config passed" || true
"${MPIRUN[@]}" "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds "${small[@]}" "${long[@]}" \
  -o k -j 1 --resume --max-steps 10 >/dev/null 2>k2.err || { cat k2.err >&2; fail "the resume after the kill failed"; }
grep -q 'resuming from' k2.err || fail "the resume did not start from a checkpoint"
echo "ok: resumed after the kill"

# 5. SIGINT to mpirun reaches every rank: they stop after the same step, rank 0 writes one
# checkpoint there and says so once, and --resume continues from it.
"${MPIRUN[@]}" "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds "${small[@]}" "${long[@]}" \
  -o s -j 1 >/dev/null 2>s.err &
job=$!
for _ in $(seq 1 300); do [[ -d s/checkpoints/step-00000005 ]] && break; sleep 0.1; done
kill -INT $job
rc=0
for _ in $(seq 1 300); do kill -0 $job 2>/dev/null || break; sleep 0.1; done
if kill -0 $job 2>/dev/null; then pkill -9 -P $job; kill -9 $job; fail "the job still runs 30 s after SIGINT"; fi
wait $job || rc=$?
[[ $(grep -c 'interrupted at step' s.err) -eq 1 ]] || { cat s.err >&2; fail "no single word of the interruption"; }
stopped=$(grep -o 'interrupted at step [0-9]*' s.err | awk '{print $4}')
[[ -d s/checkpoints/$(printf 'step-%08d' "$stopped") ]] || fail "no checkpoint at the step it stopped ($stopped)"
"${MPIRUN[@]}" "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds "${small[@]}" "${long[@]}" \
  -o s -j 1 --resume --max-steps 2 >/dev/null 2>s2.err || { cat s2.err >&2; fail "the resume after SIGINT failed"; }
grep -q "resuming from .*$(printf 'step-%08d' "$stopped")" s2.err || fail "the resume did not start at step $stopped"
echo "ok: SIGINT to mpirun stopped every rank at step $stopped with one checkpoint (mpirun $rc)"

# 6. Bad input: one clear line (from rank 0), a non-zero status, nothing started.
mpmd() {  # rank 0's arguments, then `--`, then rank 1's command
  local a=() ; while [[ $1 != -- ]]; do a+=("$1"); shift; done; shift
  mpirun -np 1 "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds "${small[@]}" "${a[@]}" : -np 1 "$@"
}
expect_mpi_error() {  # SUBSTRING CMD...: fails with SUBSTRING said once on stderr
  local needle=$1; shift
  local rc=0
  "$@" >out.txt 2>err.txt || rc=$?
  [[ $rc -ne 0 ]] || fail "'$*' succeeded"
  [[ $(grep -cF -- "$needle" err.txt) -eq 1 ]] || { cat err.txt >&2; fail "'$*': stderr says '$needle' $(grep -cF -- "$needle" err.txt) times, expected once"; }
  echo "ok: $(grep -F -- "$needle" err.txt | head -c 300)"
}
expect_mpi_error "rank 1 of 2: this rank was started with another config" \
  mpmd -o d1 -- "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds "${small[@]}" -o d1 \
  --set train.optimizer.lr=0.002
grep -qF "lr: 0.002" err.txt || fail "the differing key is not named"
[[ ! -e d1/checkpoints ]] || fail "a run started despite the disagreement"
# Rank 1 may not write a byte (RLIMIT_FSIZE 0): the RUNDIR check names it.
expect_mpi_error "rank 1 of 2: " \
  mpmd -o d2 -- bash -c 'ulimit -f 0; exec "$@"' _ "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" \
  text.ds "${small[@]}" -o d2
grep -qF "cannot be written by this process" err.txt || { cat err.txt >&2; fail "the unwritable RUNDIR is not named"; }
expect_mpi_error "cannot share a step of 8 windows" \
  mpirun -np 3 "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds "${small[@]}" -o d3
grep -qF "start 1, 2, 4, 8 processes" err.txt || fail "the process counts that work are not named"
expect_mpi_error "runs as one" "${MPIRUN[@]}" "$MEGABYTE" eval one text.ds
echo "all MPI tests passed"
