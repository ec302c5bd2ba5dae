#!/usr/bin/env bash
# megabyte bench --dataset: measures, reports in both forms, and refuses what it cannot read.
source "$(dirname "$0")/lib.sh"

make_text_docs docs 5
"$MEGABYTE" -q prepare --val-fraction 0 --frame-size 4K -o ds docs >/dev/null

"$MEGABYTE" -q bench --dataset ds --window 512 --seconds 0.2 -j 2 >bench.txt
grep -Eq '^dataset read: [0-9]+ windows/s of 512 bytes \([0-9]+ MB/s\) on 2 threads' bench.txt ||
  { cat bench.txt; fail "bench table line"; }

"$MEGABYTE" -q bench --dataset ds --window 512 --seconds 0.2 -j 1 --cache 0 --json >bench.json
for field in '"benchmark": "dataset-read"' '"window_bytes": 512' '"threads": 1' '"windows_per_second"'; do
  grep -qF "$field" bench.json || { cat bench.json; fail "bench --json lacks $field"; }
done
windows=$(sed -n 's/.*"windows": \([0-9]*\).*/\1/p' bench.json)
[[ $windows -gt 0 ]] || fail "bench read no windows"

# The validation split is empty here: a clear error, not a hang or a division by zero.
expect_fail 1 "has no bytes to read" "$MEGABYTE" bench --dataset ds --split validation --seconds 0.2
expect_fail 1 "has no split 'test'" "$MEGABYTE" bench --dataset ds --split test --seconds 0.2
expect_fail 1 "not a megabyte dataset" "$MEGABYTE" bench --dataset docs --seconds 0.2
expect_fail 2 "dataset" "$MEGABYTE" bench
# A crash (here a SIGSEGV sent from outside) is reported as megabyte's bug, with a backtrace,
# and still ends with the signal's exit status.
"$MEGABYTE" bench --dataset ds --window 512 --seconds 30 -j 1 >/dev/null 2>crash.err &
pid=$!
for _ in $(seq 1 200); do grep -q "bench: reading" crash.err && break; sleep 0.05; done
kill -SEGV $pid
rc=0; wait $pid || rc=$?
[[ $rc -eq 139 ]] || { cat crash.err; fail "a crash exited $rc, not 139"; }
grep -q "internal error: segmentation fault; please report" crash.err || { cat crash.err; fail "no crash report"; }
# Training throughput of a config, beside the machine's sgemm rate.
CONFIGS="$TESTS_DIR/../../configs"
"$MEGABYTE" -q bench --config "$CONFIGS/tiny-cpu.yaml" --set model.context=128 --steps 2 --seconds 0.1 -j 2 >train.txt
grep -Eq '^train: +[0-9]+ bytes/s, [0-9.]+ s/step, [0-9.]+ GFLOP/s' train.txt || { cat train.txt; fail "bench train line"; }
grep -Eq '^sgemm: +[0-9.]+ GFLOP/s' train.txt || { cat train.txt; fail "bench sgemm line"; }
grep -Eq '^memory: +peak' train.txt || { cat train.txt; fail "bench memory line"; }
"$MEGABYTE" -q bench --config "$CONFIGS/tiny-cpu.yaml" --set model.context=128 --steps 2 --seconds 0.1 --json >train.json
python3 - train.json <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["benchmark"] == "train", j
assert j["steps"] >= 2 and j["bytes_per_second"] > 0 and j["gflops"] > 0 and j["sgemm_gflops"] > 0, j
# The FLOP count of the formula in megabyte-bench(1), by hand for T=128, P=8, D_G=32 (width 256),
# 2+2 layers, D_L=64, batch 8: global K=16 rows, local 128 rows of 16-byte patches.
T, P, K, CG, DL, DG, B = 128, 8, 16, 256, 64, 32, 8
def stack(N, S, C, L): return L * (2 * N * (4 * C * C + 8 * C * C) + 4 * (N / S) * S * (S + 1) / 2 * C)
fwd = stack(K, K, CG, 2) + stack(T, P, DL, 2) + 2 * T * DG * DL + 2 * T * DL * 256
assert abs(j["flops_per_step"] - 3 * fwd * B) < 1e-6 * j["flops_per_step"], (j["flops_per_step"], 3 * fwd * B)
PY
expect_fail 2 "config" "$MEGABYTE" bench --config "$CONFIGS/tiny-cpu.yaml" --dataset ds
expect_fail 1 "model.contxt" "$MEGABYTE" bench --config "$CONFIGS/tiny-cpu.yaml" --set model.contxt=64
# Generation: the KV cache against re-running the window per byte, random weights or a run's.
"$MEGABYTE" -q bench --config "$CONFIGS/tiny-cpu.yaml" --set model.context=64 --generate --seconds 0.1 --steps 2 --json >gen.json
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["benchmark"] == "generate" and j["context"] == 64 and j["cached_bytes"] >= 64 and j["reforward_bytes"] >= 2 and j["speedup"] > 0, j' gen.json
# Several sequences side by side: every one of them reaches the 64-byte minimum.
"$MEGABYTE" -q bench --config "$CONFIGS/tiny-cpu.yaml" --set model.context=64 --generate --batch 3 --seconds 0.1 --steps 2 --json >gen3.json
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["batch"] == 3 and j["cached_bytes"] == 3 * 64, j' gen3.json
# The generator's memory grows with the sequences; in bf16 its KV caches take half the bytes.
"$MEGABYTE" -q bench --config "$CONFIGS/tiny-cpu.yaml" --set model.context=64 --generate --batch 3 --seconds 0.1 --steps 2 --precision bf16 --json >gen3b.json
python3 - gen.json gen3.json gen3b.json <<'PY' || fail "bench --generate: generator_bytes"
import json, sys
one, three, three_bf16 = (json.load(open(p))["generator_bytes"] for p in sys.argv[1:])
assert 0 < one < three, (one, three)
assert three_bf16 < three, (three_bf16, three)
PY
"$MEGABYTE" -q train "$CONFIGS/tiny-cpu.yaml" ds -o run --set model.context=64 --set train.steps=1 \
  --set train.optimizer.warmup_steps=1 --set train.eval_every=0 >/dev/null 2>&1
"$MEGABYTE" -q bench --checkpoint run --seconds 0.1 --steps 2 >ckgen.txt
grep -Eq '^generate \(cache\): +[0-9.]+ bytes/s' ckgen.txt && grep -Eq '^generate \(re-forward\):' ckgen.txt &&
  grep -Eq '^generate memory: +[0-9.]+ [kMG]?B of KV caches' ckgen.txt ||
  { cat ckgen.txt; fail "bench --checkpoint lines"; }
expect_fail 2 "" "$MEGABYTE" bench --generate --dataset ds
# Eval: forward-only throughput of the config's model, the pass `megabyte eval` runs per batch;
# its batch is the config's (tiny-cpu: 8) or --batch.
"$MEGABYTE" -q bench --config "$CONFIGS/tiny-cpu.yaml" --set model.context=128 --eval --steps 2 --seconds 0.1 -j 2 >eval.txt
grep -Eq '^eval: +[0-9]+ bytes/s, [0-9.]+ s/batch, [0-9.]+ GFLOP/s \([0-9.]+ GFLOP/batch of 8 x 128 bytes, [0-9]+ batches\)$' eval.txt ||
  { cat eval.txt; fail "bench --eval line"; }
grep -Eq '^memory: +peak [0-9.]+ [kMG]?B resident; activations' eval.txt || { cat eval.txt; fail "bench --eval memory line"; }
"$MEGABYTE" -q bench --config "$CONFIGS/tiny-cpu.yaml" --set model.context=128 --eval --batch 3 --steps 2 --seconds 0.1 --json >eval.json
python3 - eval.json <<'PY' || fail "bench --eval --json"
import json, math, sys
j = json.load(open(sys.argv[1]))
assert j["benchmark"] == "eval" and j["batch"] == 3 and j["context"] == 128 and j["batches"] >= 2, j
assert j["bytes_per_second"] > 0 and j["gflops"] > 0 and j["peak_rss_bytes"] > 0, j
# A forward pass only: the training step's FLOPs (above) over 3, for 3 windows.
T, P, K, CG, DL, DG = 128, 8, 16, 256, 64, 32
def stack(N, S, C, L): return L * (2 * N * (4 * C * C + 8 * C * C) + 4 * (N / S) * S * (S + 1) / 2 * C)
fwd = stack(K, K, CG, 2) + stack(T, P, DL, 2) + 2 * T * DG * DL + 2 * T * DL * 256
assert abs(j["flops_per_batch"] - 3 * fwd) < 1e-6 * j["flops_per_batch"], (j["flops_per_batch"], 3 * fwd)
# Fresh weights of init_std 0.006 predict every byte about evenly: a loss near ln 256.
assert abs(j["loss"] - math.log(256)) < 0.2, j
PY
expect_fail 2 "--eval" "$MEGABYTE" bench --config "$CONFIGS/tiny-cpu.yaml" --eval --generate
expect_fail 2 "--eval" "$MEGABYTE" bench --config "$CONFIGS/tiny-cpu.yaml" --eval --memory
expect_fail 2 "--eval" "$MEGABYTE" bench --dataset ds --eval
# --memory: a config's device memory from the model's allocation plan; no GPU is needed to ask.
"$MEGABYTE" -q bench --config "$CONFIGS/tiny-cpu.yaml" --memory --device cuda >mem.txt
for row in parameters gradients 'AdamW moments' 'bf16 weight copy' activations 'cuBLASLt workspace' total; do
  grep -Eq "^  $row +[0-9.]+ [kMG]?B" mem.txt || { cat mem.txt; fail "bench --memory lacks its '$row' row"; }
done
"$MEGABYTE" -q bench --config "$CONFIGS/tiny-cpu.yaml" --memory --device cuda --json >mem_cuda.json
"$MEGABYTE" -q bench --config "$CONFIGS/tiny-cpu.yaml" --memory --device cpu --json >mem_cpu.json
"$MEGABYTE" -q bench --config "$CONFIGS/tiny-cpu.yaml" --memory --device cuda --json --set train.batch_size=16 >mem_b16.json
"$MEGABYTE" -q bench --config "$CONFIGS/tiny-cpu.yaml" --memory --device cuda --precision fp32 --json >mem_fp32.json
python3 - mem_cuda.json mem_cpu.json mem_b16.json mem_fp32.json <<'PY'
import json, sys
cuda, cpu, b16, fp32 = (json.load(open(f)) for f in sys.argv[1:])
parts = ["parameter_bytes", "gradient_bytes", "optimizer_bytes", "bf16_weight_bytes",
         "activation_bytes", "workspace_bytes"]
for plan in (cuda, cpu, fp32):
    assert plan["total_bytes"] == sum(plan[p] for p in parts), plan
# bf16 (the CUDA default) keeps a bf16 copy of the weights, half the fp32 values, and saves
# four of a layer's activations as bf16 (the products' inputs and the pre-activation: 80% of
# fp32's activation bytes for tiny-cpu, less for wider models); fp32 does neither.
assert cuda["precision"] == "bf16" and cuda["bf16_weight_bytes"] * 2 == cuda["parameter_bytes"], cuda
assert cpu["precision"] == "fp32" and cpu["bf16_weight_bytes"] == 0, cpu
assert fp32["bf16_weight_bytes"] == 0 and fp32["activation_bytes"] == cpu["activation_bytes"], fp32
assert 0.65 * fp32["activation_bytes"] < cuda["activation_bytes"] < 0.9 * fp32["activation_bytes"], (cuda, fp32)
assert cuda["parameter_bytes"] >= 4 * cuda["parameters"] and cuda["optimizer_bytes"] == 2 * cuda["parameter_bytes"], cuda
assert cuda["workspace_bytes"] == 32 << 20 and cpu["workspace_bytes"] == 0, (cuda, cpu)
assert fp32["activation_bytes"] == cpu["activation_bytes"] > 0, (fp32, cpu)
# Activations scale with the batch (tiny-cpu has batch 8); parameters do not.
assert abs(b16["activation_bytes"] - 2 * cuda["activation_bytes"]) < 0.01 * b16["activation_bytes"], (b16, cuda)
assert b16["parameter_bytes"] == cuda["parameter_bytes"]
PY
# train.recompute: smaller activations, said in the plan; --fit finds a way to take the same
# step within a budget (the least recomputation, the largest micro-batch), or says none fits.
"$MEGABYTE" -q bench --config "$CONFIGS/tiny-cpu.yaml" --memory --device cpu --json --set train.recompute=all >mem_rc.json
"$MEGABYTE" -q bench --config "$CONFIGS/tiny-cpu.yaml" --memory --device cpu --json --fit 1G >fit_big.json
budget=$(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(p["total_bytes"] - p["activation_bytes"] // 3)' mem_cpu.json)
"$MEGABYTE" -q bench --config "$CONFIGS/tiny-cpu.yaml" --memory --device cpu --json --fit "$budget" >fit.json
"$MEGABYTE" -q bench --config "$CONFIGS/tiny-cpu.yaml" --memory --device cpu --fit "$budget" >fit.txt
"$MEGABYTE" -q bench --config "$CONFIGS/tiny-cpu.yaml" --memory --device cpu --json --fit 1M >fit_none.json
python3 - mem_cpu.json mem_rc.json fit_big.json fit.json fit_none.json "$budget" <<'PY'
import json, sys
plain, rc, big, fit, none = (json.load(open(f)) for f in sys.argv[1:6])
budget = int(sys.argv[6])
assert plain["recompute"] == "none" and rc["recompute"] == "all", (plain, rc)
assert rc["activation_bytes"] < plain["activation_bytes"] and rc["parameter_bytes"] == plain["parameter_bytes"]
assert big["fits"] is True and "fitting" not in big, big
assert fit["fits"] is False and fit["fit_bytes"] == budget, fit
f = fit["fitting"]
assert f["total_bytes"] <= budget, f
assert f["batch_size"] * f["grad_accumulation"] == plain["batch_size"] * 1, f   # tiny-cpu: 8 x 1
assert f["batch_size"] < plain["batch_size"] or f["recompute"] != "none", f
assert none["fits"] is False and none["fitting"] is None, none
PY
grep -q "does not fit .*; the same step (8 windows) fits as --set train.batch_size=" fit.txt || { cat fit.txt; fail "--fit advice"; }
grep -q "recompute none" mem.txt || { cat mem.txt; fail "the plan names its recompute setting"; }
expect_fail 1 "is for eval and generation" "$MEGABYTE" bench --config "$CONFIGS/tiny-cpu.yaml" --batch 4 --seconds 0.1
expect_fail 1 "model.global.heads" "$MEGABYTE" bench --config "$CONFIGS/tiny-cpu.yaml" --memory --device cuda \
  --set model.global.heads=1
expect_fail 2 "--device" "$MEGABYTE" bench --config "$CONFIGS/tiny-cpu.yaml" --device gpu
# Without a usable GPU, --device cuda is refused in one line that says why.
if ! nvidia-smi -L >/dev/null 2>&1; then
  expect_fail 1 "--device cuda" "$MEGABYTE" bench --config "$CONFIGS/tiny-cpu.yaml" --device cuda --seconds 0.1
fi
if ! nvidia-smi -L >/dev/null 2>&1; then
  expect_fail 1 "--device cuda" "$MEGABYTE" bench --config "$CONFIGS/tiny-cpu.yaml" --generate --device cuda --seconds 0.1
  expect_fail 1 "--device cuda" "$MEGABYTE" bench --config "$CONFIGS/tiny-cpu.yaml" --eval --device cuda --seconds 0.1
fi
# The CUDA backend is a module the program opens only when asked about GPUs: a run on the CPU
# loads no CUDA library (cuBLASLt alone is about 210 MB resident), and --device cuda opens the
# module (then says there is no GPU, or runs): it must never fail to load.
# Without the NVIDIA driver (no GPU here) the default device is the CPU, chosen without opening
# the module either.
device_runs=("--device cpu")
nvidia-smi -L >/dev/null 2>&1 || device_runs+=("")
for device in "${device_runs[@]}"; do
  # shellcheck disable=SC2086  # $device is one option and its value, or nothing
  LD_DEBUG=libs "$MEGABYTE" -q bench --config "$CONFIGS/tiny-cpu.yaml" --set model.context=128 --steps 1 \
    --seconds 0.1 $device >/dev/null 2>libs_cpu.txt
  grep -q "libdnnl" libs_cpu.txt || { tail -5 libs_cpu.txt; fail "LD_DEBUG=libs shows the libraries loaded"; }
  if grep -Eq "libcublas|libcudart|libnccl" libs_cpu.txt; then
    grep -E "calling init: .*(cublas|cudart|nccl)" libs_cpu.txt
    fail "a CPU run (${device:-the default device}) loaded CUDA libraries"
  fi
done
LD_DEBUG=libs "$MEGABYTE" -q bench --config "$CONFIGS/tiny-cpu.yaml" --set model.context=128 --steps 1 \
  --seconds 0.1 --device cuda >/dev/null 2>libs_cuda.txt || true
grep -v "^ *[0-9]*:" libs_cuda.txt >cuda_err.txt || true
if [[ $MEGABYTE_CUDA == yes ]]; then
  grep -q "libcublasLt" libs_cuda.txt || fail "--device cuda did not open the CUDA module"
  if grep -q "module" cuda_err.txt; then cat cuda_err.txt; fail "the CUDA module does not load"; fi
  # The program alone, without its module beside it (nor installed): one line that says where
  # it looked; a file of that name that is not a module: the loader's reason.
  mkdir -p alone
  cp "$MEGABYTE" alone/megabyte
  expect_fail 1 "the CUDA backend module is not installed (looked for $PWD/alone/megabyte-cuda.so" \
    alone/megabyte bench --config "$CONFIGS/tiny-cpu.yaml" --device cuda --seconds 0.1
  grep -q "hint: install megabyte again (meson install puts megabyte-cuda.so in " "$WORK/err.txt" ||
    fail "the missing module's hint says how to get it"
  echo "not a module" >alone/megabyte-cuda.so
  expect_fail 1 "the CUDA backend module does not load: $PWD/alone/megabyte-cuda.so" \
    alone/megabyte bench --config "$CONFIGS/tiny-cpu.yaml" --device cuda --seconds 0.1
else
  grep -q "built without the CUDA backend" cuda_err.txt || { cat cuda_err.txt; fail "--device cuda in a build without CUDA"; }
fi
# --precision bf16 on the CPU runs the bf16 twin of the GPU's products (rounded operands).
"$MEGABYTE" -q bench --config "$CONFIGS/tiny-cpu.yaml" --set model.context=128 --steps 1 --seconds 0.1 \
  --device cpu --precision bf16 >bf16.txt
grep -Eq '^sgemm: +[0-9.]+ GFLOP/s \(1024x1024x1024 bf16 gemm' bf16.txt || { cat bf16.txt; fail "bench --precision bf16 line"; }
expect_fail 2 "--precision" "$MEGABYTE" bench --config "$CONFIGS/tiny-cpu.yaml" --precision fp16
echo "all bench checks passed"
