#!/usr/bin/env bash
# megabyte train survives SIGKILL: a run killed again and again at random moments (inside
# checkpoint writing, inside validation, before it has written anything), each time restarted
# with the same `train --resume` command as a scheduler would, ends with checkpoint bytes and a
# metrics log equal to those of a run never killed; a second process on the run refuses at
# once, and a dead one's lock does not block. Repeatable by seed: MB_CRASH_SEED=N (printed).
source "$(dirname "$0")/lib.sh"
CONFIGS="$TESTS_DIR/../../configs"
SEED=${MB_CRASH_SEED:-$(((RANDOM << 15) | RANDOM))}
KILLS=${MB_CRASH_KILLS:-24}
echo "seed $SEED (repeat with MB_CRASH_SEED=$SEED)"

# Text of the Python standard library (every Debian machine has it), a few hundred kB.
python3 -c 'import glob, os, sys; print("\n".join(sorted(glob.glob(os.path.dirname(os.__file__) + "/*.py"))[:40]))' >list.txt
"$MEGABYTE" -q prepare -o text.ds - <list.txt >/dev/null

# A small model, a checkpoint every 4 steps (the last 2 kept: pruning too is killed), a
# validation every 6 long enough (64 kB) to be hit, a metrics line every step. One thread:
# the machine's other cores are the test runner's.
train=(train "$CONFIGS/tiny-cpu.yaml" text.ds --resume -j 1
  --set model.context=256 --set model.global.dim=16 --set model.global.layers=2
  --set model.global.heads=4 --set model.local.dim=32 --set model.local.layers=1
  --set model.local.heads=2 --set train.batch_size=2 --set train.steps=128
  --set train.checkpoint_every=4 --set train.keep_checkpoints=2 --set train.eval_every=6
  --set train.eval_bytes=65536 --set train.log_every=1 --set train.optimizer.warmup_steps=4)

start=$EPOCHREALTIME
"$MEGABYTE" "${train[@]}" -o straight >/dev/null 2>straight.err ||
  { cat straight.err; fail "the run never killed failed"; }
seconds=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
echo "a run never killed: $seconds s"

python3 "$TESTS_DIR/sigkill_train.py" "$SEED" "$KILLS" 3 "$seconds" killed -- \
  "$MEGABYTE" "${train[@]}" -o killed | tee kills.txt || { tail -20 sigkill.log; fail "seed $SEED"; }

kills=$(sed -n 's/^SIGKILLS=\([0-9]*\) .*/\1/p' kills.txt)
[[ $kills -ge 20 ]] || fail "seed $SEED: only $kills SIGKILLs before the run ended"
final=checkpoints/step-00000128
for f in model.safetensors optimizer.safetensors; do
  cmp "straight/$final/$f" "killed/$final/$f" ||
    fail "seed $SEED: $f after the kills differs from the run never killed"
done
[[ $(ls killed/checkpoints) == $(ls straight/checkpoints) ]] ||
  fail "seed $SEED: other checkpoints kept: $(ls killed/checkpoints) vs $(ls straight/checkpoints)"
# The log reads as if the run had never stopped (its timings aside).
strip='import json, sys
for l in open(sys.argv[1]):
    j = json.loads(l)
    [j.pop(k, None) for k in ("bytes_per_second", "val_seconds")]
    print(json.dumps(j, sort_keys=True))'
diff <(python3 -c "$strip" straight/metrics.jsonl) <(python3 -c "$strip" killed/metrics.jsonl) ||
  fail "seed $SEED: the metrics log after the kills differs from the run never killed"
leftovers=$(find killed -name '.*' | grep -v '^killed$' || true)
[[ -z $leftovers ]] || fail "seed $SEED: left behind: $leftovers"
grep -q "no run to resume there yet" sigkill.log || fail "the first --resume did not say it starts the run"
"$MEGABYTE" info --verify killed | grep -q "verified: both files" || fail "the final checkpoint does not verify"
echo "ok: seed $SEED: $(grep -o 'survived.*' kills.txt)"
