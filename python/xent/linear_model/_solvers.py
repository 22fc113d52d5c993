"""Minimisers for :class:`~xent.linear_model._objective.Objective`: L-BFGS-B through
``scipy.optimize.minimize`` and a truncated Newton method (conjugate gradients on exact
Hessian-vector products, Armijo backtracking), both stopping when ``max|grad f| <= tol``.

Each returns ``(theta, n_iter, converged, message)``; the estimator turns a failure into a
``ConvergenceWarning``.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

_EPS = np.finfo(np.float64).eps


def lbfgs(obj, theta0, max_iter, tol, verbose):
    """scikit-learn's settings: ``gtol=tol``, ``ftol=64*eps``, ``maxls=50``."""
    if max_iter == 0:  # scipy would still take a step
        g = obj.loss_grad(theta0)[1]
        return theta0, 0, float(np.max(np.abs(g), initial=0.0)) <= tol, "lbfgs: max_iter=0"
    state = {"k": 0, "f": np.nan, "g": np.nan}

    def fun(theta):
        f, g = obj.loss_grad(theta)
        state["f"], state["g"] = f, float(np.max(np.abs(g), initial=0.0))
        return f, g

    def callback(theta):
        state["k"] += 1
        if verbose:
            print(f"lbfgs iter {state['k']:4d}  loss {state['f']:.12g}  max|grad| {state['g']:.3e}")

    res = minimize(
        fun, theta0, method="L-BFGS-B", jac=True, callback=callback,
        options={"maxiter": max_iter, "maxls": 50, "gtol": tol, "ftol": 64 * _EPS},
    )
    n_iter = min(int(res.nit), max_iter)
    return res.x, n_iter, res.status == 0, f"lbfgs: {res.message}"


def _cg(hv, g, tol, max_inner):
    """Approximately solves ``H d = -g`` by conjugate gradients from 0, stopping when
    ``sum|residual| <= tol`` or when a direction of non-positive curvature appears."""
    d = np.zeros_like(g)
    r = g.copy()  # residual H d + g
    p = -r
    rr = float(r @ r)
    for i in range(max_inner):
        if np.abs(r).sum() <= tol:
            break
        Hp = hv(p)
        curv = float(p @ Hp)
        if curv <= 16 * _EPS * float(p @ p):
            if i == 0:  # no curvature information at all: steepest descent
                d = -g.copy()
            break
        a = rr / curv
        d += a * p
        r += a * Hp
        rr_new = float(r @ r)
        p = -r + (rr_new / rr) * p
        rr = rr_new
    return d


def newton_cg(obj, theta0, max_iter, tol, verbose, max_inner=200):
    """Truncated Newton (Nocedal & Wright, Alg. 7.1), as scikit-learn's ``newton-cg``:
    inner tolerance ``min(0.5, sqrt(|g|_1)) * |g|_1``; step 1 first, halved until the
    Armijo condition ``f_new <= f + 1e-4 * t * g.d`` holds."""
    theta = np.array(theta0, dtype=np.float64)
    f, g = obj.loss_grad(theta)
    for k in range(max_iter + 1):
        gmax = float(np.max(np.abs(g), initial=0.0))
        if verbose:
            print(f"newton-cg iter {k:4d}  loss {f:.12g}  max|grad| {gmax:.3e}")
        if gmax <= tol:
            return theta, k, True, "newton-cg: converged"
        if k == max_iter:
            break
        g1 = float(np.abs(g).sum())
        hv = obj.hessp()
        d = _cg(hv, g, min(0.5, np.sqrt(g1)) * g1, max_inner)
        slope = float(g @ d)
        if slope >= 0:  # not a descent direction (round-off): fall back to -g
            d, slope = -g, -float(g @ g)
        t = 1.0
        for _ in range(60):
            f_new, g_new = obj.loss_grad(theta + t * d)
            if f_new <= f + 1e-4 * t * slope:
                break
            # f can no longer decrease measurably: accept if the gradient still shrinks
            if abs(f_new - f) <= 16 * _EPS * abs(f) and np.abs(g_new).sum() < g1:
                break
            t *= 0.5
        else:
            obj.loss_grad(theta)  # the line search failed: stay at theta
            return theta, k, False, f"newton-cg: line search failed at loss {f!r}, max|grad| {gmax:.3e}"
        theta = theta + t * d
        f, g = f_new, g_new
    return theta, max_iter, False, f"newton-cg: reached max_iter={max_iter} at max|grad| {gmax:.3e}"
