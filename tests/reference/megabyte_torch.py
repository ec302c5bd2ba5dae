#!/usr/bin/env python3
"""A plain PyTorch MEGABYTE, written from the paper (eq. 1-6) with megabyte's tensor names
(megabyte-checkpoint(5)), for side-by-side checks outside the build: what users run today.

  python3 tests/reference/megabyte_torch.py --bench [--context 2048 --batch 4 ...]
      training bytes/s of the shape of configs/bench-cpu.yaml, to compare with
      `megabyte bench --config configs/bench-cpu.yaml` on the same machine and threads.

Needs PyTorch (Debian: apt-get install python3-torch, 1.13). Not part of the test suite:
the project itself depends on Debian packages only, and its tests need no Python packages.
"""
import argparse
import math
import time

import torch
import torch.nn.functional as F

PAD = 256


def stack_params(prefix, C, layers, m):
    """The tensors of one pre-norm stack, named as megabyte names them."""
    p = {}
    for l in range(layers):
        q = f"{prefix}layers.{l}."
        p[q + "ln1.weight"], p[q + "ln1.bias"] = torch.ones(C), torch.zeros(C)
        p[q + "attn.qkv.weight"], p[q + "attn.qkv.bias"] = torch.empty(3 * C, C), torch.zeros(3 * C)
        p[q + "attn.proj.weight"], p[q + "attn.proj.bias"] = torch.empty(C, C), torch.zeros(C)
        p[q + "ln2.weight"], p[q + "ln2.bias"] = torch.ones(C), torch.zeros(C)
        p[q + "ffn.fc.weight"], p[q + "ffn.fc.bias"] = torch.empty(m * C, C), torch.zeros(m * C)
        p[q + "ffn.proj.weight"], p[q + "ffn.proj.bias"] = torch.empty(C, m * C), torch.zeros(C)
    p[prefix + "ln_f.weight"], p[prefix + "ln_f.bias"] = torch.ones(C), torch.zeros(C)
    return p


def megabyte_params(T, P, DG, LG, DL, LL, m):
    p = {
        "global.byte_embedding": torch.empty(257, DG),
        "global.position_embedding": torch.empty(T, DG),
        "global.pad_patch": torch.empty(P * DG),
    }
    p.update(stack_params("global.", P * DG, LG, m))
    p["local.global_projection.weight"] = torch.empty(DL, DG)
    p["local.byte_embedding"] = torch.empty(257, DL)
    p.update(stack_params("local.", DL, LL, m))
    for name, t in p.items():   # the paper's init: normal(0, 0.006) truncated at 2 sigma
        if t.dim() >= 1 and not name.endswith(("bias", "ln1.weight", "ln2.weight", "ln_f.weight")):
            torch.nn.init.trunc_normal_(t, std=0.006, a=-0.012, b=0.012)
    return {k: torch.nn.Parameter(v) for k, v in p.items()}


def stack_forward(p, prefix, x, layers, heads, dropout, training, eps=1e-5):
    """x: [sequences, S, C] -> the stack's output, pre-norm blocks then ln_f."""
    n, S, C = x.shape
    d = C // heads
    mask = torch.ones(S, S, dtype=torch.bool).triu(1)
    for l in range(layers):
        q = f"{prefix}layers.{l}."
        h = F.layer_norm(x, (C,), p[q + "ln1.weight"], p[q + "ln1.bias"], eps)
        qkv = F.linear(h, p[q + "attn.qkv.weight"], p[q + "attn.qkv.bias"]).view(n, S, 3, heads, d)
        qh, kh, vh = (t.transpose(1, 2) for t in qkv.unbind(2))          # [n, heads, S, d]
        scores = (qh @ kh.transpose(-1, -2)) / math.sqrt(d)
        att = scores.masked_fill(mask, float("-inf")).softmax(-1) @ vh
        att = att.transpose(1, 2).reshape(n, S, C)
        x = x + F.dropout(F.linear(att, p[q + "attn.proj.weight"], p[q + "attn.proj.bias"]), dropout, training)
        h = F.layer_norm(x, (C,), p[q + "ln2.weight"], p[q + "ln2.bias"], eps)
        h = F.relu(F.linear(h, p[q + "ffn.fc.weight"], p[q + "ffn.fc.bias"]))
        x = x + F.dropout(F.linear(h, p[q + "ffn.proj.weight"], p[q + "ffn.proj.bias"]), dropout, training)
    return F.layer_norm(x, (C,), p[prefix + "ln_f.weight"], p[prefix + "ln_f.bias"], eps)


def megabyte_loss(p, ids, a, training=True):
    """Mean cross-entropy over the real bytes of ids [B, T] (pads are 256)."""
    B, T = ids.shape
    P, DG, DL = a.patch, a.global_dim, a.local_dim
    K = T // P
    emb = p["global.byte_embedding"][ids[:, : T - P]] + p["global.position_embedding"][: T - P]   # (1)
    g_in = torch.cat([p["global.pad_patch"].expand(B, 1, P * DG), emb.reshape(B, K - 1, P * DG)], 1)  # (2)
    g_out = stack_forward(p, "global.", g_in, a.global_layers, a.global_heads, a.dropout, training)   # (3)
    prev = torch.cat([torch.full((B, K, 1), PAD, dtype=ids.dtype), ids.view(B, K, P)[:, :, :-1]], 2)
    l_in = F.linear(g_out.reshape(B * K, P, DG), p["local.global_projection.weight"]) + \
        p["local.byte_embedding"][prev.reshape(B * K, P)]                                         # (4)
    l_out = stack_forward(p, "local.", l_in, a.local_layers, a.local_heads, a.dropout, training)     # (5)
    logits = F.linear(l_out.reshape(B * T, DL), p["local.byte_embedding"][:256])                   # (6)
    targets = ids.reshape(-1).masked_fill(ids.reshape(-1) >= 256, -100)
    return F.cross_entropy(logits, targets, ignore_index=-100)


def bench(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    p = megabyte_params(a.context, a.patch, a.global_dim, a.global_layers, a.local_dim, a.local_layers, 4)
    opt = torch.optim.AdamW(p.values(), lr=2e-4, betas=(0.9, 0.98), weight_decay=0.1)
    ids = torch.randint(0, 256, (a.batch, a.context))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = megabyte_loss(p, ids, a)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(p.values(), 1.0)
        opt.step()
        return loss.item()

    step()   # warm-up
    t0, n = time.perf_counter(), 0
    while n < a.steps or time.perf_counter() - t0 < a.seconds:
        step()
        n += 1
    dt = time.perf_counter() - t0
    params = sum(t.numel() for t in p.values())
    print(f"pytorch {torch.__version__}, {a.threads} threads: {a.batch * a.context * n / dt:.0f} bytes/s, "
          f"{dt / n:.3f} s/step ({n} steps), {params / 1e6:.2f}M parameters")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", action="store_true", required=True)
    ap.add_argument("--context", type=int, default=2048)
    ap.add_argument("--patch", type=int, default=8)
    ap.add_argument("--global-dim", type=int, default=64)
    ap.add_argument("--global-layers", type=int, default=4)
    ap.add_argument("--global-heads", type=int, default=8)
    ap.add_argument("--local-dim", type=int, default=128)
    ap.add_argument("--local-layers", type=int, default=2)
    ap.add_argument("--local-heads", type=int, default=4)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0)
    bench(ap.parse_args())


if __name__ == "__main__":
    main()
