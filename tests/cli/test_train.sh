#!/usr/bin/env bash
# megabyte train end to end: a tiny model learns real text; a run stopped (by --max-steps or
# by SIGINT) and resumed ends with the same weight bytes as a run that never stopped; and
# the bad inputs of a training run are refused with one clear line.
source "$(dirname "$0")/lib.sh"
CONFIGS="$TESTS_DIR/../../configs"

# Real text: the King James Bible when bible-kjv is installed (data/install-deps.sh), else
# the Python standard library's sources, which every Debian machine has.
if command -v bible >/dev/null; then
  bash "$TESTS_DIR/../../data/fetch-debian.sh" "$WORK/dev" 2>/dev/null
  TEXT="$WORK/dev/kjv"
else
  TEXT=$(python3 -c 'import os; print(os.path.dirname(os.__file__))')
  echo "note: bible-kjv not installed; training on $TEXT instead"
  # (sorted by Python: `find | head` under pipefail fails when find gets SIGPIPE)
  python3 -c 'import glob, sys; print("\n".join(sorted(glob.glob(sys.argv[1] + "/*.py"))[:60]))' "$TEXT" >pylist.txt
fi
if [[ -f pylist.txt ]]; then
  "$MEGABYTE" -q prepare -o text.ds - <pylist.txt >/dev/null
else
  "$MEGABYTE" -q prepare -o text.ds "$TEXT" >/dev/null
fi

small=(--set model.context=256 --set model.global.dim=16 --set model.global.layers=2
       --set model.global.heads=4 --set model.local.dim=64 --set model.local.layers=1
       --set model.local.heads=2 --set train.batch_size=4 --set train.eval_bytes=65536)

# 1. It learns: validation bits per byte well below the 8 of a uniform guess, and below the
# ~4.4 of byte frequencies alone, so the model uses its context.
"$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds -o run1 "${small[@]}" \
  --set train.steps=400 --set train.eval_every=200 --set train.checkpoint_every=200 \
  --set train.optimizer.lr=0.003 --set train.optimizer.warmup_steps=20 >out1.txt
cat out1.txt
[[ -f run1/config.yaml && -f run1/metrics.jsonl ]] || fail "run directory incomplete"
[[ -f run1/checkpoints/step-00000400/model.safetensors ]] || fail "no final checkpoint"
[[ -f run1/checkpoints/step-00000200/optimizer.safetensors ]] || fail "no step-200 checkpoint"
bpb=$(grep -o 'validation [0-9.]*' out1.txt | awk '{print $2}')
[[ -n $bpb ]] || fail "no validation bpb printed"
awk -v b="$bpb" 'BEGIN { exit !(b < 3.6) }' || fail "validation bpb $bpb is not below 3.6"
grep -q '"val_bpb"' run1/metrics.jsonl || fail "metrics.jsonl lacks val_bpb"
python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' run1/metrics.jsonl ||
  fail "metrics.jsonl is not JSON lines"

# 2. Resume is exact: 2N steps straight == N steps, stop, resume N steps.
resume_args=("${small[@]}" --set train.steps=8 --set train.eval_every=4 --set train.checkpoint_every=4
             --set train.optimizer.warmup_steps=2 --set train.grad_accumulation=2 --set train.log_every=1)
"$MEGABYTE" -q train "$CONFIGS/tiny-cpu.yaml" text.ds -o straight "${resume_args[@]}" >/dev/null
"$MEGABYTE" -q train "$CONFIGS/tiny-cpu.yaml" text.ds -o stopped "${resume_args[@]}" --max-steps 3 >/dev/null
[[ -d stopped/checkpoints/step-00000003 ]] || fail "--max-steps 3 left no step-3 checkpoint"
"$MEGABYTE" -q train "$CONFIGS/tiny-cpu.yaml" text.ds -o stopped "${resume_args[@]}" --resume >/dev/null
cmp straight/checkpoints/step-00000008/model.safetensors stopped/checkpoints/step-00000008/model.safetensors ||
  fail "resumed weights differ from the uninterrupted run"
cmp straight/checkpoints/step-00000008/optimizer.safetensors stopped/checkpoints/step-00000008/optimizer.safetensors ||
  fail "resumed optimizer state differs from the uninterrupted run"
[[ $(grep -c '"loss"' stopped/metrics.jsonl) -eq $(grep -c '"loss"' straight/metrics.jsonl) ]] ||
  fail "the resumed metrics log has another number of lines"
# The run records its dataset: --resume refuses another one and takes a copy of its own.
grep -q '^fingerprint: "[0-9a-f]\{16\}"$' stopped/trained-on.yaml || fail "the run did not record its dataset"
"$MEGABYTE" -q prepare -o other.ds "$TESTS_DIR"/*.sh >/dev/null
expect_fail 1 "is not the dataset this run was trained on" \
  "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" other.ds -o stopped "${resume_args[@]}" --resume
cp -r text.ds copy.ds
"$MEGABYTE" -q train "$CONFIGS/tiny-cpu.yaml" copy.ds -o stopped "${resume_args[@]}" --resume >/dev/null ||
  fail "--resume refused a copy of the run's own dataset"

# ... and after SIGINT, at whatever step it lands.
"$MEGABYTE" -q train "$CONFIGS/tiny-cpu.yaml" text.ds -o killed "${resume_args[@]}" \
  >/dev/null 2>killed.err &
pid=$!
for _ in $(seq 1 600); do [[ -s killed/metrics.jsonl ]] && break; sleep 0.05; done
kill -INT $pid
rc=0; wait $pid || rc=$?
if [[ $rc -eq 130 ]]; then
  ls killed/checkpoints | grep -q step- || fail "SIGINT left no checkpoint"
  "$MEGABYTE" -q train "$CONFIGS/tiny-cpu.yaml" text.ds -o killed "${resume_args[@]}" --resume >/dev/null
else
  [[ $rc -eq 0 ]] || { cat killed.err; fail "interrupted run exited $rc"; }
fi
cmp straight/checkpoints/step-00000008/model.safetensors killed/checkpoints/step-00000008/model.safetensors ||
  fail "weights after SIGINT + resume differ from the uninterrupted run"

# The bf16 mode (the GPU's default) on the CPU: the products' operands rounded to bf16. It
# trains, says so, and its checkpoint is an ordinary one that an fp32 eval reads.
"$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds -o bf16run "${small[@]}" --set train.steps=4 \
  --set train.eval_every=0 --set train.optimizer.warmup_steps=1 --precision bf16 >bf16.out 2>bf16.err
grep -q "bf16 matrix products" bf16.err || { cat bf16.err; fail "a bf16 run does not say so"; }
"$MEGABYTE" -q eval bf16run text.ds --max-bytes 4096 --precision fp32 >/dev/null || fail "fp32 eval of a bf16-trained checkpoint"

# 3. Bad input.
printf 'model:\n  kind: megabyte\n   context: 12\n' >broken.yaml
expect_fail 1 "broken.yaml" "$MEGABYTE" train broken.yaml text.ds -o r
printf 'model:\n  patch_sise: 4\n' >typo.yaml
expect_fail 1 "patch_size" "$MEGABYTE" train typo.yaml text.ds -o r
expect_fail 1 "model.patch_size" "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds -o r --set model.patch_size=7
expect_fail 1 "data.modality" "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds -o r --set data.modality=audio
expect_fail 1 "holds another run" "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds -o run1 "${small[@]}"
expect_fail 1 "train.steps: 400 -> 600" "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds -o run1 "${small[@]}" --resume
# A scheduler restarts a job with the same command, so --resume starts a run not yet started
# (and says so), as if started without it.
"$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds -o fresh "${resume_args[@]}" --resume >/dev/null 2>fresh.err ||
  { cat fresh.err; fail "--resume refused a run directory that does not exist yet"; }
grep -q "no run to resume there yet" fresh.err || { cat fresh.err; fail "--resume started a new run silently"; }
cmp straight/checkpoints/step-00000008/model.safetensors fresh/checkpoints/step-00000008/model.safetensors ||
  fail "a run started by --resume differs from one started without"
if ! nvidia-smi -L >/dev/null 2>&1; then
  expect_fail 1 "--device cuda" "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds -o r --device cuda
fi
expect_fail 2 "--device" "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds -o r --device tpu
expect_fail 2 "--precision" "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds -o r --precision fp16
[[ ! -e r ]] || fail "a refused run left its directory behind"

# A damaged checkpoint is refused, naming the file.
cp -r straight damaged
ck=damaged/checkpoints/step-00000008/model.safetensors
size=$(stat -c %s "$ck")
printf '\x55' | dd of="$ck" bs=1 seek=$((size - 10)) conv=notrunc 2>/dev/null
expect_fail 1 "model.safetensors" "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds -o damaged "${resume_args[@]}" --resume
"$MEGABYTE" info --verify straight | grep -q "verified: both files" || fail "info --verify on a sound checkpoint"
cp -r straight damaged_opt
opt=damaged_opt/checkpoints/step-00000008/optimizer.safetensors
osize=$(stat -c %s "$opt")
printf '\x55' | dd of="$opt" bs=1 seek=$((osize - 10)) conv=notrunc 2>/dev/null
expect_fail 1 "optimizer.safetensors: data checksum mismatch" "$MEGABYTE" info --verify "$opt"
truncate -s $((size / 2)) "$ck"
expect_fail 1 "truncated" "$MEGABYTE" info "$ck"
expect_fail 2 "DATASET and -o RUNDIR" "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml"
"$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" --set model.patch_size=4 --print-config | grep -q "patch_size: 4" ||
  fail "--print-config does not show the override"
# Resuming a finished run does nothing, and says so.
"$MEGABYTE" -q train "$CONFIGS/tiny-cpu.yaml" text.ds -o straight "${resume_args[@]}" --resume | grep -q "already complete" ||
  fail "resuming a complete run should say it is complete"
# Recomputation and local chunks change no bit of the run: the weights and the optimizer state
# equal a run's without them (the files' config metadata, which records the settings, aside).
# Chunks of 5 patches: not a divisor of the micro-batch's patches.
"$MEGABYTE" -q train "$CONFIGS/tiny-cpu.yaml" text.ds -o rc-none "${resume_args[@]}" --max-steps 2 >/dev/null
"$MEGABYTE" -q train "$CONFIGS/tiny-cpu.yaml" text.ds -o rc-all "${resume_args[@]}" --max-steps 2 \
  --set train.recompute=all >/dev/null
"$MEGABYTE" -q train "$CONFIGS/tiny-cpu.yaml" text.ds -o rc-chunks "${resume_args[@]}" --max-steps 2 \
  --set train.local_chunk=5 >/dev/null
python3 - rc-none/checkpoints/step-00000002 rc-all/checkpoints/step-00000002 \
  rc-chunks/checkpoints/step-00000002 <<'PY'
import struct, sys
def tensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    return data[8 + n:]
for name in ("model.safetensors", "optimizer.safetensors"):
    a, b, c = (tensors(d + "/" + name) for d in sys.argv[1:4])
    assert a == b, name + ": the tensors differ with train.recompute all"
    assert a == c, name + ": the tensors differ with train.local_chunk 5"
PY

# Long windows in bounded memory: T = 65,536 under a 1.7 GB limit of address space (the
# process itself takes about 1 GB of it: libraries, thread arenas). Keeping every activation
# (960 MB of them) does not fit; recomputing both stacks with the local model 64 patches at a
# time (252 MB) trains, stops after a step, and resumes to the weights of a run never stopped.
# Under the sanitizers (the second build of tests/run.sh), where the limit is not applied (see
# below) and these runs take many times as long, the same runs at T = 8192.
long_T=65536
[[ -z ${MB_SANITIZE:-} ]] || long_T=8192
long_args=(--device cpu -j 2 --set model.context=$long_T --set model.patch_size=16 --set train.batch_size=1
           --set train.steps=2 --set train.eval_every=0 --set train.eval_bytes=65536
           --set train.optimizer.warmup_steps=1 --set train.checkpoint_every=1 --set train.log_every=1)
lean=(--set train.recompute=all --set train.local_chunk=64)
# The limit of address space: the lean run's own peak (VmPeak, sampled while it runs: the
# program's libraries, thread stacks and malloc arenas take hundreds of MB of address space,
# more with the CUDA libraries linked) plus 400 MB, where keeping every activation needs about
# 710 MB more than the lean run (bench --memory: 1.10 GB against 0.39 GB).
"$MEGABYTE" -q train "$CONFIGS/tiny-cpu.yaml" text.ds -o long-probe "${long_args[@]}" "${lean[@]}" \
  --max-steps 1 >/dev/null &
probe=$! lean_peak=0
while kill -0 $probe 2>/dev/null; do
  kb=$(awk '/^VmPeak:/ {print $2}' /proc/$probe/status 2>/dev/null || true)
  [[ -n $kb && $kb -gt $lean_peak ]] && lean_peak=$kb
  sleep 0.02
done
wait $probe || fail "the lean long run failed without a limit"
limit_kb=$((lean_peak + 400000))
(
  # AddressSanitizer reserves terabytes of address space for its shadow memory, so the
  # sanitizer build (tests/run.sh) runs the lean runs without the limit.
  if [[ -z ${MB_SANITIZE:-} ]]; then
    echo "address-space limit: the lean run's peak $((lean_peak / 1024)) MB + 400 MB"
    ulimit -v $limit_kb
    # (the arena's "cannot allocate ... bytes of memory", or "out of memory" where a host
    # buffer runs out first)
    expect_fail 1 "memory" "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds -o long-fat "${long_args[@]}"
  else
    echo "skipped under $MB_SANITIZE: the limit of address space (ulimit -v) and the run it stops"
  fi
  "$MEGABYTE" -q train "$CONFIGS/tiny-cpu.yaml" text.ds -o long-lean "${long_args[@]}" "${lean[@]}" >/dev/null
  "$MEGABYTE" -q train "$CONFIGS/tiny-cpu.yaml" text.ds -o long-resumed "${long_args[@]}" "${lean[@]}" \
    --max-steps 1 >/dev/null
  "$MEGABYTE" -q train "$CONFIGS/tiny-cpu.yaml" text.ds -o long-resumed "${long_args[@]}" "${lean[@]}" \
    --resume >/dev/null
) || fail "training at T = 65536 within the memory limit"
cmp long-lean/checkpoints/step-00000002/model.safetensors long-resumed/checkpoints/step-00000002/model.safetensors ||
  fail "the resumed long run's weights differ from the run never stopped"

# A plan the machine's memory cannot hold is refused before anything is written or
# allocated, with a way to take the same step that fits (windows of a million bytes, 32 at a
# time: hundreds of GB; one at a time, recomputed and in chunks: a few GB).
expect_fail 1 "the same step fits as --set train.batch_size=" "$MEGABYTE" train "$CONFIGS/tiny-cpu.yaml" text.ds \
  -o too-big --device cpu --set model.context=1048576 --set model.patch_size=64 --set train.batch_size=32
[[ ! -e too-big ]] || fail "a refused run left its RUNDIR behind"

echo "all train tests passed"
