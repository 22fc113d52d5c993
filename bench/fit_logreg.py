"""Fit time of xent.linear_model.SoftmaxRegression against scikit-learn's LogisticRegression
(lbfgs, multinomial) on the same dense data, C, tol and threads.

Run: python bench/fit_logreg.py                 # 200,000 x 100, 10 classes (a few minutes)
     python bench/fit_logreg.py --quick         # 20,000 x 100, for a smoke test
     python bench/fit_logreg.py --threads 1 --solvers lbfgs newton-cg --repeats 3

Both fits get the same threads: threadpoolctl caps the BLAS of both, and xent's kernels get
``n_threads`` (scikit-learn's lbfgs computes its loss on one thread whatever you ask).
The final objective of each fit, ``mean log-loss + 0.5 / (C * n) * ||W||^2`` (the function
both minimise), is computed afterwards by one independent float64 NumPy formula, with the
largest gradient entry, so that a fast fit that stopped early would show.
"""
import argparse
import os
import platform
import sys
import time
import warnings

import numpy as np
from scipy.special import logsumexp
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_info, threadpool_limits

import xent
from xent.linear_model import SoftmaxRegression


def objective(est, X, y, C):
    """f and max|grad f| of scikit-learn's objective, in float64 NumPy."""
    n = X.shape[0]
    z = X @ est.coef_.T + est.intercept_
    if z.shape[1] == 1:
        z = np.hstack([np.zeros_like(z), z])
    lse = logsumexp(z, axis=1)
    idx = np.searchsorted(est.classes_, y)
    f = float(np.mean(lse - z[np.arange(n), idx])) + 0.5 / (C * n) * float(np.sum(est.coef_**2))
    g = np.exp(z - lse[:, None])
    g[np.arange(n), idx] -= 1.0
    if est.coef_.shape[0] == 1:
        g = g[:, 1:]
    grad_w = g.T @ X / n + est.coef_ / (C * n)
    return f, max(float(np.abs(grad_w).max()), float(np.abs(g.sum(axis=0) / n).max()))


def timed_fit(make, X, y, repeats):
    """Best of ``repeats`` fits: wall seconds, CPU seconds of this process (all threads;
    the steadier figure on a shared machine), the last estimator, whether it warned."""
    times, cpus, est, warned = [], [], None, False
    for _ in range(repeats):
        est = make()
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always", ConvergenceWarning)
            t, c = time.perf_counter(), time.process_time()
            est.fit(X, y)
            times.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
        warned |= any(issubclass(x.category, ConvergenceWarning) for x in w)
        print(f"  {type(est).__name__}: {times[-1]:.2f} s wall, {cpus[-1]:.2f} s CPU, {int(est.n_iter_[0])} iterations",
              file=sys.stderr, flush=True)
    return min(times), min(cpus), est, warned


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-samples", type=int, default=200_000)
    ap.add_argument("--n-features", type=int, default=100)
    ap.add_argument("--n-classes", type=int, default=10)
    ap.add_argument("--n-informative", type=int, default=20)
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--max-iter", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--solvers", nargs="+", default=["lbfgs", "newton-cg"], choices=["lbfgs", "newton-cg"])
    ap.add_argument("--repeats", type=int, default=1, help="best of N fits")
    ap.add_argument("--quick", action="store_true", help="20,000 samples")
    args = ap.parse_args()
    n = 20_000 if args.quick else args.n_samples

    X, y = make_classification(
        n_samples=n, n_features=args.n_features, n_informative=args.n_informative,
        n_redundant=10, n_classes=args.n_classes, n_clusters_per_class=1, random_state=0,
    )
    X = np.ascontiguousarray(X, dtype=np.float64)
    blas = sorted({(d["internal_api"], d.get("version")) for d in threadpool_info()}, key=str)
    print(f"data: make_classification {n} x {args.n_features}, {args.n_classes} classes, "
          f"{args.n_informative} informative; float64")
    print(f"C={args.C} tol={args.tol} max_iter={args.max_iter} threads={args.threads}; "
          f"CPU count {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}; {platform.machine()}")
    print(f"xent {xent.__version__} (kernels: {xent.show_config(print_out=False)['isa']}), "
          f"scikit-learn {__import__('sklearn').__version__}, BLAS {blas}")

    with threadpool_limits(limits=args.threads):
        rows = [("scikit-learn LogisticRegression(lbfgs)", *timed_fit(
            lambda: LogisticRegression(C=args.C, tol=args.tol, max_iter=args.max_iter), X, y, args.repeats))]
        for solver in args.solvers:
            rows.append((f"xent SoftmaxRegression({solver})", *timed_fit(
                lambda s=solver: SoftmaxRegression(C=args.C, tol=args.tol, max_iter=args.max_iter, solver=s,
                                                   n_threads=args.threads), X, y, args.repeats)))
    t_ref, c_ref = rows[0][1], rows[0][2]
    print()
    print("| fit | wall s | CPU s | iterations | final objective | max abs gradient | sklearn / this (wall) | (CPU) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, t, c, est, warned in rows:
        f, g = objective(est, X, y, args.C)
        note = " (ConvergenceWarning)" if warned else ""
        print(f"| {name} | {t:.2f} | {c:.2f} | {int(est.n_iter_[0])}{note} | {f:.12f} | {g:.2e} "
              f"| {t_ref / t:.2f} | {c_ref / c:.2f} |")

if __name__ == "__main__":
    main()
