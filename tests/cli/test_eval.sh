#!/usr/bin/env bash
# megabyte eval end to end: the three ways of the paper on a trained tiny model, agreement
# with the validation bpb that training reported, tiny and empty inputs, and bad input.
source "$(dirname "$0")/lib.sh"
CONFIGS="$TESTS_DIR/../../configs"

# Real text: the Python standard library's sources (on every Debian machine).
python3 -c 'import glob, os; print("\n".join(sorted(glob.glob(os.path.dirname(os.__file__) + "/*.py"))[:24]))' >list.txt
"$MEGABYTE" -q prepare -o text.ds - <list.txt >/dev/null
small=(--set model.context=128 --set model.global.dim=16 --set model.global.layers=1
       --set model.global.heads=2 --set model.local.dim=32 --set model.local.layers=1
       --set model.local.heads=2 --set train.batch_size=4 --set train.steps=30
       --set train.eval_every=30 --set train.eval_bytes=0 --set train.optimizer.lr=0.003
       --set train.optimizer.warmup_steps=5)
"$MEGABYTE" -q train "$CONFIGS/tiny-cpu.yaml" text.ds -o run "${small[@]}" >/dev/null

# Plain: the same windows training scored (eval_bytes = 0: the whole split), the same bpb.
"$MEGABYTE" -q eval run text.ds --json >plain.json
python3 - plain.json run/metrics.jsonl <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))
val = [json.loads(l) for l in open(sys.argv[2]) if '"val_bpb"' in l][-1]
assert e["split"] == "validation" and e["step"] == 30 and e["documents"] >= 1, e
assert e["bytes"] == val["val_bytes"], (e["bytes"], val["val_bytes"])
assert abs(e["bpb"] - val["val_bpb"]) < 1e-9, (e["bpb"], val["val_bpb"])
assert e["stride"] == 128 and e["strided"] is False and e["bytes_per_second"] > 0, e
PY

# Sliding window and strided inference: every byte scored once, each way its own figure.
"$MEGABYTE" -q eval run text.ds --stride 32 --json >slide.json
"$MEGABYTE" -q eval run text.ds --strided --json >strided.json
"$MEGABYTE" -q eval run text.ds --stride 32 --strided --per-doc --json >both.json
"$MEGABYTE" -q eval run text.ds --stride 128 --json >stride_t.json
python3 - plain.json slide.json strided.json both.json stride_t.json <<'PY'
import json, sys
plain, slide, strided, both, stride_t = (json.load(open(f)) for f in sys.argv[1:])
for r in (slide, strided, both, stride_t):
    assert r["bytes"] == plain["bytes"], (r["bytes"], plain["bytes"])
assert stride_t["bpb"] == plain["bpb"], "stride = T must equal plain windows"
assert slide["bpb"] != plain["bpb"] and strided["bpb"] != plain["bpb"]
docs = both["per_document"]
assert sum(d["bytes"] for d in docs) == both["bytes"] and len(docs) == both["documents"]
PY
"$MEGABYTE" -q eval run text.ds --per-position --json >pos.json
python3 - pos.json plain.json <<'PY'
import json, sys
pos, plain = (json.load(open(f)) for f in sys.argv[1:])
rows = pos["per_position"]
assert [r["position"] for r in rows] == list(range(8)), rows   # P = 8 (tiny-cpu)
assert sum(r["bytes"] for r in rows) == plain["bytes"]
total = sum(r["bpb"] * r["bytes"] for r in rows) / plain["bytes"]
assert abs(total - plain["bpb"]) < 1e-9, (total, plain["bpb"])
PY
# The context curve: a model of T = 2048 has buckets 0-1K and 1K-2K, which add up to the total
# with every method; the table shows them.
"$MEGABYTE" -q train "$CONFIGS/tiny-cpu.yaml" text.ds -o long "${small[@]}" --set model.context=2048 \
  --set train.steps=2 --set train.batch_size=1 --set train.eval_every=0 \
  --set train.optimizer.warmup_steps=1 >/dev/null
for method in "" "--stride 512" "--strided" "--stride 700 --strided"; do
  # shellcheck disable=SC2086
  "$MEGABYTE" -q eval long text.ds $method --context-curve --json >curve.json
  python3 - curve.json "$method" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
c = j["context_curve"]
assert [(b["first"], b["last"]) for b in c] == [(0, 1024), (1024, 2048)], (sys.argv[2], c)
assert sum(b["bytes"] for b in c) == j["bytes"], (sys.argv[2], c, j["bytes"])
total = sum(b["bpb"] * b["bytes"] for b in c if b["bytes"]) / j["bytes"]
assert abs(total - j["bpb"]) < 1e-9, (sys.argv[2], total, j["bpb"])
PY
done
"$MEGABYTE" eval long text.ds --context-curve >curve.txt
grep -Eq '^1K-2K +[0-9]+ +[0-9]+\.[0-9]{4}$' curve.txt || { cat curve.txt; fail "context curve row"; }

"$MEGABYTE" eval run text.ds --stride 32 --strided >table.txt
grep -q "sliding window, T = 128, stride 32, strided inference" table.txt || { cat table.txt; fail "method line"; }
grep -Eq '^validation +[0-9]+\.[0-9]{4} ' table.txt || { cat table.txt; fail "bpb row"; }

# --max-bytes scores a prefix, in whole windows.
"$MEGABYTE" -q eval run text.ds --max-bytes 300 --json >prefix.json
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert 300 <= j["bytes"] < 300 + 128, j' prefix.json

# A 1-byte document and one shorter than a patch, and an empty split.
mkdir tiny && printf 'x' >tiny/a.txt && printf 'abc' >tiny/b.txt
"$MEGABYTE" -q prepare --val-fraction 0 -o tiny.ds tiny >/dev/null 2>&1 ||
  "$MEGABYTE" -q prepare -o tiny.ds tiny >/dev/null
"$MEGABYTE" -q eval run tiny.ds --split train --json >tiny.json
"$MEGABYTE" -q eval run tiny.ds --split validation --json >tiny_val.json
python3 - tiny.json tiny_val.json <<'PY'
import json, sys
t, v = (json.load(open(f)) for f in sys.argv[1:])
assert t["bytes"] + v["bytes"] == 4 and t["documents"] + v["documents"] == 2, (t, v)
PY
mkdir one && printf 'only one document here\n' >one/a.txt
"$MEGABYTE" -q prepare -o one.ds one >/dev/null
"$MEGABYTE" -q eval run one.ds --json >empty.json
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["bytes"] == 0 and j["bpb"] is None, j' empty.json
"$MEGABYTE" eval run one.ds | grep -Eq '^validation +- ' || fail "an empty split should print '-' for bpb"

# Bad input.
expect_fail 1 "has no split 'test'" "$MEGABYTE" eval run text.ds --split test
expect_fail 1 "longer than the model's context" "$MEGABYTE" eval run text.ds --stride 129
expect_fail 1 "no such checkpoint" "$MEGABYTE" eval nothing text.ds
expect_fail 2 "DATASET" "$MEGABYTE" eval run
if ! nvidia-smi -L >/dev/null 2>&1; then
  expect_fail 1 "--device cuda" "$MEGABYTE" eval run text.ds --device cuda
fi
"$MEGABYTE" -q train "$CONFIGS/tiny-transformer-cpu.yaml" text.ds -o trun --set model.context=64 \
  --set model.global.dim=16 --set model.global.layers=1 --set model.global.heads=2 \
  --set train.steps=1 --set train.eval_every=0 --set train.optimizer.warmup_steps=1 >/dev/null 2>err.txt ||
  { cat err.txt; fail "transformer run"; }
"$MEGABYTE" -q eval trun text.ds --stride 16 --json >t.json || fail "the transformer evaluates with a stride"
expect_fail 1 "needs a model with patches" "$MEGABYTE" eval trun text.ds --strided
echo "all eval tests passed"
