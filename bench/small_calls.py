"""The cost of one small call, the whole Python call included (issue 4): 64 x 10 float32
logits with int64 labels (or 0/1 targets), default options, reduction "mean"; the
loss + gradient rows also with ``grad_out=`` (a preallocated gradient), and softmax
cross-entropy with class weights (float64, as users pass them), with class weights,
sample weights and ``ignore_index`` together, with label smoothing and class weights, and
with ``softcap=30``; ``softmax_focal_loss`` (``gamma=2``, with and without per-class ``alpha``)
and ``poly1_cross_entropy`` (``epsilon=2``), PyTorch's composed from ``cross_entropy(reduction="none")``.

    python bench/small_calls.py [--repeats 200] [--number 500] [--no-torch]

Each row is timed on the fast path (python/xent/_fast.py, cpp/bindings/fast.cpp) and on
the general path (forced by making the fast bindings decline, as tests/test_fast_path.py
does: that is the code every call took before the fast path), with PyTorch's forward +
backward (``F.cross_entropy`` / ``F.binary_cross_entropy_with_logits`` and ``.backward()``
on a tensor with ``requires_grad``, one thread) where it has one. Figures are the best
over ``--repeats`` samples of ``--number`` calls (perf_counter, garbage collector off), so
a shared machine's preemptions fall out. Not a test: no assertion, nothing written.
"""
from __future__ import annotations

import argparse
import gc
import time

import numpy as np
from common import optional_torch

import xent
from xent import _core

FAST = ("softmax_xent_fast", "softmax_factor_fast", "sigmoid_xent_fast", "softmax_norm_fast")


def best_us(f, repeats: int, number: int) -> float:
    for _ in range(number):
        f()
    best = float("inf")
    gc.disable()
    try:
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(number):
                f()
            best = min(best, (time.perf_counter() - t0) / number)
    finally:
        gc.enable()
    return best * 1e6


def general_path(f, repeats: int, number: int) -> float:
    """best_us of f with the fast bindings declining (every call takes the general path)."""
    saved = {name: getattr(_core, name) for name in FAST}
    try:
        for name in FAST:
            setattr(_core, name, lambda *args: None)
        return best_us(f, repeats, number)
    finally:
        for name, fn in saved.items():
            setattr(_core, name, fn)


def torch_calls(z, y, t, w):
    torch = optional_torch(1, note=False)
    if torch is None:
        return {}
    F = torch.nn.functional
    zt = torch.from_numpy(z).requires_grad_(True)
    yt, tt = torch.from_numpy(y), torch.from_numpy(t)
    wt = torch.from_numpy(w.astype(np.float32))

    def softmax():
        zt.grad = None
        F.cross_entropy(zt, yt).backward()
        return zt.grad

    def sigmoid():
        zt.grad = None
        F.binary_cross_entropy_with_logits(zt, tt).backward()
        return zt.grad

    def weighted():
        zt.grad = None
        F.cross_entropy(zt, yt, weight=wt).backward()
        return zt.grad

    def sigmoid_weighted():
        zt.grad = None
        F.binary_cross_entropy_with_logits(zt, tt, weight=wt, pos_weight=wt).backward()
        return zt.grad

    def smoothed():
        zt.grad = None
        F.cross_entropy(zt, yt, weight=wt, label_smoothing=0.1).backward()
        return zt.grad

    def capped():  # (no soft cap in PyTorch's loss: composed before it)
        zt.grad = None
        F.cross_entropy(30.0 * torch.tanh(zt / 30.0), yt).backward()
        return zt.grad

    def focal():  # (composed from the per-row cross-entropy -log p_y, as bench/small_c.py)
        zt.grad = None
        ce = F.cross_entropy(zt, yt, reduction="none")
        ((1 - torch.exp(-ce)) ** 2 * ce).mean().backward()
        return zt.grad

    def poly1():
        zt.grad = None
        ce = F.cross_entropy(zt, yt, reduction="none")
        (ce + 2.0 * (1 - torch.exp(-ce))).mean().backward()
        return zt.grad

    return {"softmax_cross_entropy loss+grad": softmax, "sigmoid_cross_entropy loss+grad": sigmoid,
            "softmax_cross_entropy weight=": weighted, "sigmoid_cross_entropy weight, pos_w": sigmoid_weighted,
            "softmax_cross_entropy smoothing, w": smoothed, "softmax_cross_entropy softcap=30": capped,
            "softmax_focal_loss loss+grad": focal, "poly1_cross_entropy loss+grad": poly1}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--number", type=int, default=500)
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(2024)
    z = (3 * rng.standard_normal((64, 10))).astype(np.float32)
    y = rng.integers(0, 10, 64)
    t = (rng.random((64, 10)) < 0.1).astype(np.float32)
    g = np.empty_like(z)
    w = rng.random(10) + 0.5
    sw = (rng.random(64) + 0.5).astype(np.float32)
    y_ign = np.where(rng.random(64) < 0.1, -100, y)
    cases = {
        "softmax_cross_entropy loss+grad": lambda: xent.softmax_cross_entropy(z, y, return_grad=True),
        "softmax_cross_entropy grad_out=": lambda: xent.softmax_cross_entropy(z, y, return_grad=True, grad_out=g),
        "softmax_cross_entropy loss": lambda: xent.softmax_cross_entropy(z, y),
        "softmax_cross_entropy weight=": lambda: xent.softmax_cross_entropy(z, y, weight=w, return_grad=True),
        "softmax_cross_entropy w, sw, ignore": lambda: xent.softmax_cross_entropy(
            z, y_ign, weight=w, sample_weight=sw, ignore_index=-100, return_grad=True),
        "softmax_cross_entropy smoothing, w": lambda: xent.softmax_cross_entropy(
            z, y, weight=w, label_smoothing=0.1, return_grad=True),
        "softmax_cross_entropy softcap=30": lambda: xent.softmax_cross_entropy(z, y, softcap=30.0, return_grad=True),
        "softmax_focal_loss loss+grad": lambda: xent.softmax_focal_loss(z, y, return_grad=True),
        "softmax_focal_loss alpha=": lambda: xent.softmax_focal_loss(z, y, alpha=w, return_grad=True),
        "poly1_cross_entropy loss+grad": lambda: xent.poly1_cross_entropy(z, y, return_grad=True),
        "sigmoid_cross_entropy loss+grad": lambda: xent.sigmoid_cross_entropy(z, t, return_grad=True),
        "sigmoid_cross_entropy grad_out=": lambda: xent.sigmoid_cross_entropy(z, t, return_grad=True, grad_out=g),
        "sigmoid_cross_entropy weight, pos_w": lambda: xent.sigmoid_cross_entropy(
            z, t, weight=w, pos_weight=w, return_grad=True),
        "sigmoid_cross_entropy sample_weight": lambda: xent.sigmoid_cross_entropy(
            z, t, sample_weight=sw, return_grad=True),
        "sigmoid_cross_entropy smoothing": lambda: xent.sigmoid_cross_entropy(
            z, t, label_smoothing=0.1, return_grad=True),
        "sigmoid_cross_entropy axis=-1, sw": lambda: xent.sigmoid_cross_entropy(
            z, t, axis=-1, sample_weight=sw, return_grad=True),
        "logsumexp": lambda: xent.logsumexp(z),
        "log_softmax": lambda: xent.log_softmax(z),
    }
    peers = {} if args.no_torch else torch_calls(z, y, t, w)
    print(f"64 x 10 float32, us per call (best of {args.repeats} x {args.number}), isa {_core.config()['isa']}")
    print(f"{'call':36s} {'fast':>7s} {'general':>8s} {'pytorch':>8s} {'pytorch/fast':>13s}")
    for name, f in cases.items():
        fast = best_us(f, args.repeats, args.number)
        slow = general_path(f, args.repeats, args.number)
        line = f"{name:36s} {fast:7.2f} {slow:8.2f}"
        if name in peers:
            pt = best_us(peers[name], args.repeats, max(1, args.number // 10))
            line += f" {pt:8.2f} {pt / fast:12.1f}x"
        print(line)


if __name__ == "__main__":
    main()
