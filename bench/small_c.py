"""Small C: logsumexp, softmax, log_softmax and softmax cross-entropy (integer labels, loss +
gradient) on rows of 2 to 160 classes, where xent puts a row in each vector lane (C <= 128
float32, 80 float64: cpp/src/kernels/smallc-inl.hpp) and the peers pay per row.

    python bench/small_c.py [--threads 1] [--repeats 30] [--elements 262144] [--classes 2 3 10 ...]
                            [--ops logsumexp softmax log_softmax "xent loss+grad" "xent smoothing+grad"
                                   "xent targets+grad" "xent softcap+grad" "focal loss+grad"
                                   "poly1 loss+grad" "focal targets+grad"]

The last six ops (not run by default) are the loss + gradient with ``label_smoothing=0.1``
(PyTorch's ``label_smoothing=0.1``), with soft targets (PyTorch's class probabilities),
with ``softcap=30`` (PyTorch: ``30 * tanh(z / 30)`` composed before ``cross_entropy``),
``softmax_focal_loss`` with ``gamma=2`` and ``poly1_cross_entropy`` with ``epsilon=2``
(PyTorch: composed from ``cross_entropy(reduction="none")``, the per-row ``-log p_y``), and
``softmax_focal_loss`` of soft targets (PyTorch: ``-(t * (1 - p)**2 * log_softmax).sum(-1)``).

For each C, rows = elements / C. Prints per case the best time over the repeats (ms) and the
time per row (ns) of xent, with ``scipy.special`` (``logsumexp`` / ``softmax`` /
``log_softmax``; single-threaded) and PyTorch (``torch.logsumexp`` / ``softmax`` /
``log_softmax``, ``F.cross_entropy`` forward + backward) if installed, each as its time over
xent's. Outputs go to preallocated arrays where the API takes one (xent's ``out=`` and
``grad_out=``, torch's ``out=``). The cases are timed interleaved, one call of each per round.
Not a test: no assertion, nothing written.
"""
from __future__ import annotations

import argparse

import numpy as np
from common import optional_torch
from sigmoid_options import best_ms

import xent

CLASSES = [2, 3, 5, 10, 20, 32, 40, 48, 64, 80, 96, 128, 160]
OPS = ["logsumexp", "softmax", "log_softmax", "xent loss+grad"]
LOSS_OPS = {  # op -> (xent's keywords, whether the targets are soft)
    "xent loss+grad": ({}, False),
    "xent smoothing+grad": ({"label_smoothing": 0.1}, False),
    "xent targets+grad": ({}, True),
    "xent softcap+grad": ({"softcap": 30.0}, False),
    "focal loss+grad": ({"gamma": 2.0}, False),
    "poly1 loss+grad": ({"epsilon": 2.0}, False),
    "focal targets+grad": ({"gamma": 2.0}, True),
}
LOSS_FN = {"focal loss+grad": "softmax_focal_loss", "poly1 loss+grad": "poly1_cross_entropy",
           "focal targets+grad": "softmax_focal_loss"}


def calls(op, z, y, nt, torch):
    """name -> function for one case: xent, and the peers that have the op."""
    out = np.empty_like(z)
    if op in LOSS_OPS:
        kw, soft = LOSS_OPS[op]
        if soft:  # rows of class probabilities
            t = np.random.default_rng(1).random(z.shape).astype(z.dtype)
            y = t / t.sum(-1, keepdims=True)
        fn = getattr(xent, LOSS_FN.get(op, "softmax_cross_entropy"))
        c = {"xent": lambda: fn(z, y, return_grad=True, grad_out=out, n_threads=nt, **kw)}
    elif op == "logsumexp":
        c = {"xent": lambda: xent.logsumexp(z, n_threads=nt)}
    else:
        f = getattr(xent, op)
        c = {"xent": lambda: f(z, out=out, n_threads=nt)}
    try:
        from scipy import special

        if op not in LOSS_OPS:
            sf = getattr(special, op)
            c["scipy"] = lambda: sf(z, axis=-1)
    except ImportError:
        pass
    if torch is not None:
        zt, ot = torch.from_numpy(z), torch.from_numpy(out)
        if op in LOSS_OPS:
            zg, yt = zt.clone().requires_grad_(), torch.from_numpy(y)
            eps, cap = kw.get("label_smoothing", 0.0), kw.get("softcap")

            def ce():
                zg.grad = None
                zc = zg if cap is None else cap * torch.tanh(zg / cap)
                if op in LOSS_FN and soft:  # composed: -sum t (1 - p)^gamma log p
                    lp = torch.log_softmax(zg, -1)
                    (-(yt * (1 - lp.exp()) ** kw["gamma"] * lp).sum(-1)).mean().backward()
                elif op in LOSS_FN:  # composed from the per-row loss -log p_y, p_y = exp(-loss)
                    nll = torch.nn.functional.cross_entropy(zg, yt, reduction="none")
                    q = 1 - torch.exp(-nll)
                    loss = q**kw["gamma"] * nll if "gamma" in kw else nll + kw["epsilon"] * q
                    loss.mean().backward()
                else:
                    torch.nn.functional.cross_entropy(zc, yt, label_smoothing=eps).backward()

            c["torch"] = ce
        elif op == "logsumexp":
            c["torch"] = lambda: torch.logsumexp(zt, -1)
        else:
            tf = getattr(torch, op)
            c["torch"] = lambda: tf(zt, -1, out=ot)
    return c


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--elements", type=int, default=262144)
    ap.add_argument("--classes", type=int, nargs="+", default=CLASSES)
    ap.add_argument("--ops", nargs="+", default=OPS, choices=OPS[:3] + list(LOSS_OPS))
    args = ap.parse_args()
    torch = optional_torch(args.threads)
    nt = args.threads
    rng = np.random.default_rng(0)
    print(f"{nt} thread(s), {args.elements} elements per case, best of {args.repeats}; ms, and ns per row")
    print(f"{'case':>30s} {'xent ms':>8s} {'ns/row':>7s} {'scipy/xent':>10s} {'torch/xent':>10s}")
    for dt in (np.float32, np.float64):
        for C in args.classes:
            R = max(1, args.elements // C)
            z = (rng.standard_normal((R, C)) * 3).astype(dt)
            y = rng.integers(0, C, R)
            for op in args.ops:
                ms = best_ms(calls(op, z, y, nt, torch), args.repeats)
                x = ms["xent"]
                ratio = {k: f"{ms[k] / x:9.2f}x" if k in ms else f"{'-':>10s}" for k in ("scipy", "torch")}
                name = f"{op} {R}x{C} {np.dtype(dt).name}"
                print(f"{name:>30s} {x:8.3f} {x * 1e6 / R:7.1f} {ratio['scipy']} {ratio['torch']}")


if __name__ == "__main__":
    main()
