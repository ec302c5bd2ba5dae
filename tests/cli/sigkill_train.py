#!/usr/bin/env python3
"""Kills a `megabyte train ... --resume` with SIGKILL, again and again, the way a preempting
scheduler or a power cut would, and restarts the same command each time until the run ends.

    sigkill_train.py SEED KILLS AT_LEAST SECONDS RUNDIR -- COMMAND...

COMMAND is run as is, every time (it must hold --resume, -o RUNDIR, and --set for
train.steps and train.eval_every). The moments of the
kills are drawn from SEED, one of four kinds per kill:
  early       within the first 0.3 s: before the run has written config.yaml or its first
              checkpoint, or while it opens the dataset and loads the last checkpoint;
  anytime     uniformly within 3 * SECONDS / KILLS (SECONDS: about an uncut run's length);
  checkpoint  as soon as a checkpoint's staging directory (checkpoints/.step-*) appears,
              at the first or second checkpoint of this life (or its pruning);
  validation  after a step's metrics line of a validation step is written and before that
              validation's line is: at the first or second validation of this life.
A checkpoint kill counts as one inside checkpoint writing when the staging directory is still
there after the process died, a validation kill as one inside validation when the validation's
line is still missing; the figures printed at the end are of what was observed, not intended.
The first life is an early kill within 8 ms (mostly before config.yaml); the second life
also starts a second process on RUNDIR, which must refuse at once (the lock).
After KILLS kills, of which at least AT_LEAST inside checkpoint writing and as many inside
validation (lives go on until then, up to 4 * KILLS), one more life is killed while it writes
the run's last checkpoint, and the command then runs to its end. Exit status 0 when every restart resumed and
the last one ended with status 0; 1 otherwise, with the reason on stderr.
"""
import json
import os
import random
import re
import signal
import subprocess
import sys
import time

POLL = 0.0005  # seconds between looks at RUNDIR: fine enough for a checkpoint's write


def metrics_lines(run_dir):
    try:
        with open(os.path.join(run_dir, "metrics.jsonl")) as f:
            text = f.read()
    except FileNotFoundError:
        return []
    out = []
    for line in text.split("\n"):
        try:
            out.append(json.loads(line))
        except ValueError:
            pass  # a line being written
    return out


def staging_dirs(run_dir):
    try:
        return [n for n in os.listdir(os.path.join(run_dir, "checkpoints")) if n.startswith(".step-")]
    except FileNotFoundError:
        return []


def log_identity(run_dir):
    """The metrics log's inode and size: they change once a life writes it."""
    try:
        st = os.stat(os.path.join(run_dir, "metrics.jsonl"))
        return (st.st_ino, st.st_size)
    except FileNotFoundError:
        return None


def pending_validation(run_dir, eval_every):
    """The step whose validation runs now (its loss line written, its val line not), or None."""
    lines = metrics_lines(run_dir)
    losses = [j["step"] for j in lines if "loss" in j]
    vals = {j["step"] for j in lines if "val_bpb" in j}
    if losses and losses[-1] % eval_every == 0 and losses[-1] not in vals:
        return losses[-1]
    return None


def main():
    args = sys.argv[1:]
    sep = args.index("--")
    seed, kills, at_least = int(args[0]), int(args[1]), int(args[2])
    seconds, run_dir = float(args[3]), args[4]
    command = args[sep + 1:]
    eval_every = int(re.search(r"train\.eval_every=(\d+)", " ".join(command)).group(1))
    total_steps = int(re.search(r"train\.steps=(\d+)", " ".join(command)).group(1))
    rng = random.Random(seed)
    inside = {"early": 0, "anytime": 0, "checkpoint": 0, "validation": 0}
    missed = 0  # checkpoint and validation kills that came too late: at another moment
    unstarted = 0  # kills before the run wrote config.yaml
    kinds = ["early", "anytime", "checkpoint", "validation", "checkpoint", "validation"]
    log = open(os.path.join(os.path.dirname(os.path.abspath(run_dir)), "sigkill.log"), "w")
    life = 0

    def wanted():
        short = [k for k in ("checkpoint", "validation") if inside[k] < at_least]
        return short if sum(inside.values()) + missed >= kills else kinds

    while wanted() and life < 4 * kills:
        life += 1
        kind = rng.choice(wanted()) if life > 1 else "early"
        nth = rng.choice([1, 2]) if kind == "checkpoint" else 1
        # (the first life: within 8 ms, most likely before it wrote config.yaml; anytime: within
        # a few lives' share of the run, so that the kills spread over all of it)
        delay = rng.uniform(0, 0.008 if life == 1 else 0.3) if kind == "early" else \
            rng.uniform(0, 3 * seconds / kills)
        lag = rng.uniform(0, 0.02)  # into the validation
        proc = subprocess.Popen(command, stdout=log, stderr=log)
        start = time.monotonic()
        if life == 2:
            check_second_process_refused(command, run_dir, proc)
        # Only what this life writes counts: not the staging directories a killed life left
        # (until this one removes them), nor a validation pending in the log it has not yet
        # rewritten.
        events, seen, hit = 0, set(staging_dirs(run_dir)), False
        old_log, last_val = log_identity(run_dir), None
        while proc.poll() is None:
            if kind in ("early", "anytime") and time.monotonic() - start >= delay:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                hit = True
            elif kind == "checkpoint":
                new = set(staging_dirs(run_dir)) - seen
                if new:
                    seen |= new
                    events += 1
                    if events >= nth:
                        proc.send_signal(signal.SIGKILL)
                        proc.wait()
                        hit = bool(new & set(staging_dirs(run_dir)))
            elif kind == "validation" and log_identity(run_dir) != old_log:
                step = pending_validation(run_dir, eval_every)
                if step is not None and step != last_val:
                    last_val = step
                    events += 1
                    if events >= nth:
                        time.sleep(lag)
                        proc.send_signal(signal.SIGKILL)
                        proc.wait()
                        hit = pending_validation(run_dir, eval_every) == step
            time.sleep(POLL)
        rc = proc.wait()
        if rc == 0:
            print(f"life {life}: the run ended before its {kind} kill")
            break
        if rc != -signal.SIGKILL:
            log.close()
            sys.exit(f"FAIL: life {life} exited with status {rc}, not by SIGKILL; see sigkill.log")
        if hit:
            inside[kind] += 1
        else:
            missed += 1
        if not os.path.exists(os.path.join(run_dir, "config.yaml")):
            unstarted += 1
        steps = [j["step"] for j in metrics_lines(run_dir) if "loss" in j]
        print(f"life {life}: SIGKILL {kind if hit else kind + ' (missed: at another moment)'} after "
              f"{time.monotonic() - start:.2f} s, last logged step {steps[-1] if steps else '-'}")
    # Once more, in the run's last checkpoint: the one written as it ends.
    last = f".step-{total_steps:08d}.partial-"
    proc = subprocess.Popen(command, stdout=log, stderr=log)
    while proc.poll() is None and not any(n.startswith(last) for n in staging_dirs(run_dir)):
        time.sleep(POLL)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        life += 1
        hit = any(n.startswith(last) for n in staging_dirs(run_dir))
        inside["checkpoint" if hit else "anytime"] += 1
        print(f"life {life}: SIGKILL {'inside' if hit else 'after'} the last checkpoint")
    # The same command, to the end.
    rc = subprocess.run(command, stdout=log, stderr=log).returncode
    log.close()
    if rc != 0:
        sys.exit(f"FAIL: the last resume exited with status {rc}; see sigkill.log")
    if min(inside["checkpoint"], inside["validation"]) < at_least:
        sys.exit(f"FAIL: too few kills landed inside checkpoint writing or validation: {inside}")
    total = sum(inside.values()) + missed
    print(f"survived {total} SIGKILLs in {life} lives: {inside['checkpoint']} inside checkpoint "
          f"writing, {inside['validation']} inside validation, {inside['early']} early "
          f"({unstarted} before config.yaml), "
          f"{inside['anytime'] + missed} at other moments")
    print(f"SIGKILLS={total} CHECKPOINT={inside['checkpoint']} VALIDATION={inside['validation']}")


def check_second_process_refused(command, run_dir, first):
    """While the first holds RUNDIR (its pid in the lock file), a second process on it must
    refuse at once; the first started after a process killed while it held the lock."""
    deadline = time.monotonic() + 30
    lock = os.path.join(run_dir, "train.lock")
    while not (os.path.exists(lock) and open(lock).read().strip() == str(first.pid)):
        if first.poll() is not None or time.monotonic() > deadline:
            sys.exit("FAIL: the first process did not take the run's lock")
        time.sleep(POLL)
    t0 = time.monotonic()
    second = subprocess.run(command, capture_output=True, text=True, timeout=60)
    took = time.monotonic() - t0
    if second.returncode != 1 or "in use by another megabyte train" not in second.stderr:
        sys.exit(f"FAIL: a second train on {run_dir} exited {second.returncode}: {second.stderr}")
    if took > 10:
        sys.exit(f"FAIL: a second train on {run_dir} took {took:.1f} s to refuse")
    print(f"ok: a second train on the run refused in {took:.2f} s: {second.stderr.strip()}")


if __name__ == "__main__":
    main()
