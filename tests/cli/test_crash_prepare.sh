#!/usr/bin/env bash
# megabyte prepare survives SIGKILL: killed at random moments (early, after a random number
# of its shards, just before its final rename), there is never a directory with the
# dataset's name that is not the complete dataset; what a killed run leaves (.NAME.partial-PID) is named and removed by the next run,
# which then writes the same bytes as a run never killed. Repeatable by seed: MB_CRASH_SEED=N.
source "$(dirname "$0")/lib.sh"
SEED=${MB_CRASH_SEED:-$(((RANDOM << 15) | RANDOM))}
KILLS=${MB_CRASH_KILLS:-12}
echo "seed $SEED (repeat with MB_CRASH_SEED=$SEED)"
RANDOM=$SEED

# A few MB of text in many small shards, so that a run lasts long enough to be cut anywhere.
python3 -c 'import glob, os; print("\n".join(sorted(glob.glob(os.path.dirname(os.__file__) + "/**/*.py", recursive=True))[:600]))' >list.txt
prep=(prepare -j 1 --shard-size 64K --frame-size 16K -)
start=$EPOCHREALTIME
"$MEGABYTE" -q "${prep[@]}" -o ref.ds <list.txt >/dev/null
ms=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
echo "a run never killed: $ms ms, $(du -sh ref.ds | cut -f1)"

# The dataset's name holds nothing, or the complete dataset (equal to the one never killed).
check_named() {
  [[ -e out.ds ]] || return 0
  "$MEGABYTE" info --verify out.ds >/dev/null 2>verify.err ||
    { cat verify.err; fail "seed $SEED: kill $1 left an out.ds that does not verify"; }
  diff -r ref.ds out.ds >/dev/null || fail "seed $SEED: kill $1 left an out.ds unlike the reference"
  rm -rf out.ds
  complete=$((complete + 1))
}

# The kills are aimed at what the staging directory shows, not at times, so that a seed
# kills at the same moments however fast the machine is.
files=$(ls ref.ds | wc -l)
complete=0 at_commit=0 at_shard=0 left=()
for i in $(seq 1 "$KILLS"); do
  kind=$((RANDOM % 3)) shard=$((1 + RANDOM % files)) early=$((RANDOM % 20))
  "$MEGABYTE" "${prep[@]}" -o out.ds <list.txt >/dev/null 2>>runs.err &
  pid=$!
  if ((kind == 0)); then
    sleep "0.0$(printf %02d $early)"  # early: within 20 ms, as it starts
  elif ((kind == 1)); then
    # Once the staging directory holds `shard` files (shards, and one being written).
    until (($(compgen -G '.out.ds.partial-*/*' | wc -l) >= shard)) || ! kill -0 $pid 2>/dev/null; do :; done
    kill -0 $pid 2>/dev/null && at_shard=$((at_shard + 1))
  else
    # Just before the rename into place: once the manifest is in the staging directory.
    until compgen -G '.out.ds.partial-*/*dataset.yaml*' >/dev/null || ! kill -0 $pid 2>/dev/null; do :; done
    kill -0 $pid 2>/dev/null && at_commit=$((at_commit + 1))
  fi
  kill -9 $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  check_named "$i"
  mapfile -t -O ${#left[@]} left < <(compgen -G '.out.ds.partial-*' || true)
done
"$MEGABYTE" "${prep[@]}" -o out.ds <list.txt >/dev/null 2>last.err || { cat last.err; fail "the run after the kills failed"; }
# Every staging directory a kill left was removed by a later run, which named it.
named=0
for d in $(printf '%s\n' "${left[@]}" | sort -u); do
  grep -qF "removing ./$d, left unfinished by process" runs.err last.err || fail "seed $SEED: $d was removed without a word"
  named=$((named + 1))
done
echo "$KILLS SIGKILLs ($at_shard after a number of shards, $at_commit just before the final rename, $complete after it); $named staging directories left, named and removed"
[[ -z $(compgen -G '.out.ds.partial-*' || true) ]] || fail "seed $SEED: staging directories remain: $(compgen -G '.out.ds.partial-*')"
"$MEGABYTE" info --verify out.ds >/dev/null || fail "seed $SEED: the dataset after the kills does not verify"
diff -r ref.ds out.ds || fail "seed $SEED: the dataset after the kills differs from the one never killed"
echo "ok: seed $SEED: prepare survived $KILLS SIGKILLs"
