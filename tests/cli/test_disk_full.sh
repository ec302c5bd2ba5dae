#!/usr/bin/env bash
# A disk that fills while megabyte train writes a checkpoint: train exits 1 with one line that
# names the file it could not write, leaves no half-written checkpoint, and the previous
# checkpoint stays intact: it verifies, and the run resumes from it (with space again) to the
# bytes of a run that never ran out of space. The full disk is a small tmpfs, mounted in a
# private mount namespace (unshare -m, as root); where mounting is not allowed, a file size
# limit (ulimit -f: writes past it fail with EFBIG) stands in for it.
source "$(dirname "$0")/lib.sh"
CONFIGS="$TESTS_DIR/../../configs"

python3 -c 'import glob, os; print("\n".join(sorted(glob.glob(os.path.dirname(os.__file__) + "/*.py"))[:20]))' >list.txt
"$MEGABYTE" -q prepare -o text.ds - <list.txt >/dev/null
train=(train "$CONFIGS/tiny-cpu.yaml" "$WORK/text.ds" -j 1 --set model.context=256
  --set model.global.dim=16 --set model.global.layers=2 --set model.global.heads=4
  --set model.local.dim=32 --set model.local.layers=1 --set model.local.heads=2
  --set train.batch_size=2 --set train.steps=8 --set train.checkpoint_every=4
  --set train.eval_every=0 --set train.log_every=1 --set train.optimizer.warmup_steps=2)

"$MEGABYTE" -q "${train[@]}" -o straight >/dev/null
"$MEGABYTE" -q "${train[@]}" -o run --max-steps 4 >/dev/null
ckpt=run/checkpoints/step-00000004
ckpt_bytes=$(du -sb "$ckpt" | cut -f1)
model_kb=$(($(stat -c %s "$ckpt/model.safetensors") / 1024))
opt_kb=$(($(stat -c %s "$ckpt/optimizer.safetensors") / 1024))

# check_full ERRFILE RUNDIR: what a checkpoint that did not fit must leave.
check_full() {
  local err=$1 dir=$2
  grep -Eq "checkpoints/step-00000008/(model|optimizer).safetensors: cannot write" "$err" ||
    { cat "$err"; fail "the error does not name the file of the checkpoint it could not write"; }
  grep -Eq "No space left on device|File too large" "$err" || { cat "$err"; fail "the error does not say why"; }
  [[ ! -e $dir/checkpoints/step-00000008 ]] || fail "a checkpoint that did not fit has its final name"
  [[ -z $(find "$dir/checkpoints" -name '.*') ]] || fail "left behind: $(find "$dir/checkpoints" -name '.*')"
  "$MEGABYTE" info --verify "$dir" | grep -q "verified: both files" || fail "the previous checkpoint does not verify"
  rm -rf after && cp -r "$dir" after
  "$MEGABYTE" -q "${train[@]}" -o after --resume >/dev/null || fail "no resume from the previous checkpoint"
  cmp straight/checkpoints/step-00000008/model.safetensors after/checkpoints/step-00000008/model.safetensors ||
    fail "the run resumed after the full disk differs from one that never ran out of space"
}

mkdir full
if unshare -m true 2>/dev/null; then
  # Room for the run as it is and half a checkpoint more.
  size=$(($(du -sb run | cut -f1) + ckpt_bytes / 2))
  rc=0
  unshare -m bash -c '
    mount -t tmpfs -o size='"$size"' tmpfs full || exit 77
    cp -r run full/run
    "$MEGABYTE" -q "$@" -o full/run --resume >/dev/null 2>full.err; echo $? >full.rc
    cp -r full/run full-after' bash "${train[@]}" || rc=$?
  if [[ $rc -eq 0 ]]; then
    [[ $(cat full.rc) -eq 1 ]] || { cat full.err; fail "train on a full disk exited $(cat full.rc), expected 1"; }
    [[ $(grep -vc warning full.err) -eq 1 ]] || { cat full.err; fail "the error is not one line"; }
    echo "tmpfs of $size bytes: $(cat full.err)"
    check_full full.err full-after
    echo "ok: a full tmpfs during a checkpoint"
    exit 0
  fi
  echo "note: mounting a tmpfs is not allowed here (status $rc); a file size limit stands in for it"
else
  echo "note: no private mount namespace here (unshare -m); a file size limit stands in for the tmpfs"
fi
# A limit between the two files' sizes: model.safetensors fits, optimizer.safetensors not.
rc=0
(trap '' XFSZ; ulimit -f $(((model_kb + opt_kb) / 2)); exec "$MEGABYTE" -q "${train[@]}" -o run --resume) \
  >/dev/null 2>limit.err || rc=$?
[[ $rc -eq 1 ]] || { cat limit.err; fail "train past the file size limit exited $rc, expected 1"; }
[[ $(grep -vc warning limit.err) -eq 1 ]] || { cat limit.err; fail "the error is not one line"; }
echo "ulimit -f: $(cat limit.err)"
check_full limit.err run
echo "ok: a file size limit during a checkpoint"
