#!/usr/bin/env python3
"""Compares two megabyte checkpoints (directories of model.safetensors and optimizer.safetensors)
tensor by tensor, with the Python standard library only.

  compare_checkpoints.py A B --tolerance T

Exits 0 when both hold the same tensors, the same training state (step, sampler position) and,
for every tensor, max |a - b| <= T * max(max |a|, tiny); prints the worst relative difference.
With --tolerance 0 the tensors must be the same bits."""
import argparse
import array
import json
import struct
import sys


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            sys.exit(f"{path}: {name} is {info['dtype']}, not F32")
        begin, end = info["data_offsets"]
        values = array.array("f")
        values.frombytes(body[begin:end])
        tensors[name] = values
    return meta, tensors


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--tolerance", type=float, required=True)
    args = p.parse_args()
    worst, worst_name = 0.0, ""
    for part in ("model", "optimizer"):
        meta_a, ta = read(f"{args.a}/{part}.safetensors")
        meta_b, tb = read(f"{args.b}/{part}.safetensors")
        for key in ("step", "sampler_epoch", "sampler_index"):
            if meta_a.get(key) != meta_b.get(key):
                sys.exit(f"{part}: {key} differs: {meta_a.get(key)} vs {meta_b.get(key)}")
        if ta.keys() != tb.keys():
            sys.exit(f"{part}: the tensors differ: {sorted(ta.keys() ^ tb.keys())}")
        for name in ta:
            a, b = ta[name], tb[name]
            if len(a) != len(b):
                sys.exit(f"{part}: {name}: {len(a)} vs {len(b)} values")
            scale = max(max((abs(x) for x in a), default=0.0), 1e-30)
            diff = max((abs(x - y) for x, y in zip(a, b)), default=0.0)
            if diff / scale > worst:
                worst, worst_name = diff / scale, f"{part}:{name}"
    print(f"worst relative difference {worst:.3g} ({worst_name or 'none'})")
    if worst > args.tolerance:
        sys.exit(f"above the tolerance {args.tolerance:g}")


main()
