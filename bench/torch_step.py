"""One training step of a small PyTorch classifier on the CPU with xent.torch.CrossEntropyLoss
against torch.nn.CrossEntropyLoss, and the loss alone (forward + backward).

Run: python bench/torch_step.py                      # batch 512, H=256, V=32000, 1 and 2 threads
     python bench/torch_step.py --quick              # fewer repeats, a smoke test
     python bench/torch_step.py --threads 2 --batch 1024 --out bench/results/torch_step.md

The model is Linear(128, 256) -> tanh -> Linear(256, V) on fixed random features; a step is
zero_grad, forward, loss, backward, SGD step; a third variant ("fused") hands the last
Linear's input, weight and bias to xent.torch.LinearCrossEntropyLoss instead. All see the
same model (same seed), the same batch and the same thread count (torch.set_num_threads;
xent.torch takes PyTorch's count). Printed: the median time of each over the repeats (the
variants take turns), the ratios torch / xent (> 1 when xent is faster), and the losses of
the first step (they must agree).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

import xent
import xent.torch as xt


def _median_ms(fns: dict, repeats: int, warmup: int = 2) -> dict:
    """Median ms of each function, the functions taking turns (so that a noisy spell of the
    shared machine hits both)."""
    times: dict = {k: [] for k in fns}
    for i in range(warmup + repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            if i >= warmup:
                times[k].append(time.perf_counter() - t)
    return {k: 1e3 * statistics.median(v) for k, v in times.items()}


def _model(h: int, v: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(128, h), torch.nn.Tanh(), torch.nn.Linear(h, v))


def _step_fn(crit, feats, y, h, v):
    model = _model(h, v)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    fused = isinstance(crit, xt.LinearCrossEntropyLoss)
    head = model[2]

    def step():
        opt.zero_grad(set_to_none=True)
        if fused:  # the last Linear inside the loss: no batch x V logits
            loss = crit(model[1](model[0](feats)), head.weight, y, head.bias)
        else:
            loss = crit(model(feats), y)
        loss.backward()
        opt.step()
        return loss

    return step


def _loss_fn(crit, logits, y):
    def run():
        loss = crit(logits, y)
        torch.autograd.grad(loss, logits)  # the input gradient, not accumulated into .grad

    return run


def run(threads: int, batch: int, h: int, v: int, repeats: int) -> dict:
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(batch, 128, generator=g)
    y = torch.randint(0, v, (batch,), generator=g)
    logits = (3 * torch.randn(batch, v, generator=g)).requires_grad_(True)
    crits = {"torch": torch.nn.CrossEntropyLoss(), "xent": xt.CrossEntropyLoss()}
    steppers = dict(crits, fused=xt.LinearCrossEntropyLoss())
    first = {k: _step_fn(c, feats, y, h, v)().item() for k, c in steppers.items()}
    out: dict = {"threads": threads, "first_loss": first}
    steps = _median_ms({k: _step_fn(c, feats, y, h, v) for k, c in steppers.items()}, repeats)
    losses = _median_ms({k: _loss_fn(c, logits, y) for k, c in crits.items()}, repeats)
    out.update({f"step_{k}": ms for k, ms in steps.items()}, **{f"loss_{k}": ms for k, ms in losses.items()})
    return out


_NOTE = """

ratio = torch time / xent time (> 1: xent faster). "step xent": xent.torch.CrossEntropyLoss on
the model's logits; "step fused": xent.torch.LinearCrossEntropyLoss on the last layer's input,
weight and bias (no batch x V logits); "loss f+b": the loss forward and the gradient of its
input (the logits), alone.
"""


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats (default 21, 5 with --quick)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", help="write a Markdown table here")
    a = ap.parse_args(argv)
    repeats = a.repeats or (5 if a.quick else 21)
    cfg = xent.show_config(print_out=False)
    head = (f"torch {torch.__version__}, xent {xent.__version__} (isa {cfg['isa']}), {platform.machine()}, "
            f"batch {a.batch}, Linear({a.hidden}, {a.vocab}), float32, median of {repeats}, "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs at the start")
    lines = [head, "", "| threads | step torch (ms) | step xent (ms) | step ratio | step fused (ms) | fused ratio "
             "| loss f+b torch (ms) | loss f+b xent (ms) | loss ratio |", "|---|---|---|---|---|---|---|---|---|"]
    print(head)
    for t in a.threads:
        r = run(t, a.batch, a.hidden, a.vocab, repeats)
        fl = r["first_loss"]
        print(f"threads {t}: first-step loss " + ", ".join(f"{k} {v:.6f}" for k, v in fl.items()))
        sr, fr = r["step_torch"] / r["step_xent"], r["step_torch"] / r["step_fused"]
        row = (f"| {t} | {r['step_torch']:.1f} | {r['step_xent']:.1f} | {sr:.2f} | {r['step_fused']:.1f} | {fr:.2f} "
               f"| {r['loss_torch']:.1f} | {r['loss_xent']:.1f} | {r['loss_torch'] / r['loss_xent']:.2f} |")
        print(row)
        lines.append(row)
    if a.out:
        with open(a.out, "w") as f:
            f.write("# bench/torch_step.py\n\n" + "\n".join(lines) + _NOTE)


if __name__ == "__main__":
    main()
