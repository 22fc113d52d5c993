"""The implementations the benchmark times: the memory limits, xent, and its peers.

An ``Impl`` turns a workload into a timed callable (``setup``) and that callable's return
value into ``(mean loss, gradient of the mean or None)`` for the agreement check
(``result``). ``unavailable()`` gives a reason to skip a missing peer; ``applies(wl)``
says whether it has something to time for a workload."""
from __future__ import annotations

import os

import numpy as np

import xent


class Impl:
    name = ""
    is_peer = True  # peers get a "peer / xent" ratio
    is_limit = False  # a memory limit: the other rows get a "x limit" ratio against it
    half_ok = False  # times float16 / bfloat16 workloads (common.HALF)
    versus: str | None = None  # the row its "peer / xent" ratio divides by (None: "xent")

    def unavailable(self) -> str | None:
        return None

    def applies(self, wl) -> bool:
        return True

    def versions(self) -> dict:
        return {}

    def skip_at(self, threads: int) -> str | None:
        """Why this implementation cannot be timed at this thread count in this process."""
        return None

    def setup(self, wl, data, threads):
        raise NotImplementedError

    def result(self, out, wl):
        return out


def _need(*modules) -> str | None:
    import importlib

    for m in modules:
        try:
            importlib.import_module(m)
        except ImportError as e:
            return f"not installed ({e})"
    return None


class Copy(Impl):
    """The memory limit of loss + gradient: ``np.copyto`` of the logits into a preallocated,
    already touched array (one read, one write of the logits' size). Single-threaded."""

    name = "copy (memory limit)"
    is_peer, is_limit = False, True
    half_ok = True

    def applies(self, wl):
        return wl.grad

    def setup(self, wl, data, threads):
        src = data["logits"]
        dst = np.zeros_like(src)
        return lambda: np.copyto(dst, src)

    def result(self, out, wl):
        return None


class NewCopy(Copy):
    """``np.copy`` of the logits: the copy plus allocating and page-faulting in a new array,
    as every implementation here does for its gradient."""

    name = "copy to new array"
    is_limit = False

    def setup(self, wl, data, threads):
        src = data["logits"]
        return lambda: np.copy(src)


class Read(Copy):
    """The memory limit of a forward pass: one read of the logits (``np.max``, a SIMD
    reduction that measured faster than ``np.sum`` here). Single-threaded."""

    name = "read (memory limit)"
    is_limit = True

    def applies(self, wl):
        return not wl.grad

    def setup(self, wl, data, threads):
        src = data["logits"]
        return lambda: np.max(src)


class Xent(Impl):
    name = "xent"
    is_peer = False
    half_ok = True

    def versions(self):
        return {"xent": xent.show_config(print_out=False)["version"]}

    def setup(self, wl, data, threads):
        z = data["logits"]
        if wl.kind == "softmax":
            y = data["labels"]
            return lambda: xent.softmax_cross_entropy(z, y, return_grad=wl.grad, n_threads=threads)
        t = data["targets"]
        return lambda: xent.sigmoid_cross_entropy(z, t, return_grad=wl.grad, n_threads=threads)

    def result(self, out, wl):
        return out if wl.grad else (out, None)


class XentInto(Xent):
    """xent writing its gradient into a preallocated, already touched array
    (``grad_out=``): the same work as the ``copy (memory limit)`` row, which also writes
    into such an array, without the page faults of a new gradient."""

    name = "xent, grad_out="

    def applies(self, wl):
        return wl.grad

    def setup(self, wl, data, threads):
        z = data["logits"]
        g = np.zeros_like(z)
        if wl.kind == "softmax":
            y = data["labels"]
            return lambda: xent.softmax_cross_entropy(z, y, return_grad=True, grad_out=g, n_threads=threads)
        t = data["targets"]
        return lambda: xent.sigmoid_cross_entropy(z, t, return_grad=True, grad_out=g, n_threads=threads)


class XentAvx2Into(XentInto):
    """xent's AVX2 kernel set, timed where the default is the AVX-512 one: the same calls
    as ``xent, grad_out=`` (and their bits checked against it), its peer / xent ratio the
    AVX-512 set's speedup. Set for each call and restored after (a pointer store)."""

    name = "xent avx2, grad_out="
    is_peer = True
    versus = XentInto.name

    def unavailable(self):
        isas = xent.show_config(print_out=False)["runnable_isas"]
        if "avx512" not in isas:
            return "this CPU runs no AVX-512 kernel set (xent's default is its best, timed above)"
        return None

    def setup(self, wl, data, threads):
        from xent import _core

        call = super().setup(wl, data, threads)
        best = _core.config()["isa"]

        def f():
            _core.set_isa("avx2")
            try:
                return call()
            finally:
                _core.set_isa(best)

        return f


class NumPy(Impl):
    """A careful implementation in the logits' dtype: max subtraction, exp, sum, log; mean
    in float64. NumPy's ufuncs are single-threaded whatever --threads says."""

    name = "numpy"

    def versions(self):
        return {"numpy": np.__version__}

    @staticmethod
    def softmax(z, y, grad):
        n = z.shape[0]
        rows = np.arange(n)
        g = z - z.max(axis=1, keepdims=True)
        picked = g[rows, y]
        np.exp(g, out=g)
        s = g.sum(axis=1, keepdims=True)
        loss = float(np.mean(np.log(s[:, 0]) - picked, dtype=np.float64))
        if not grad:
            return loss, None
        g *= (1.0 / n) / s
        g[rows, y] -= 1.0 / n
        return loss, g

    @staticmethod
    def sigmoid(z, t, grad):
        n = z.size
        e = np.exp(-np.abs(z))
        loss = float(np.mean(np.maximum(z, 0) - z * t + np.log1p(e), dtype=np.float64))
        if not grad:
            return loss, None
        g = np.where(z >= 0, 1.0, e).astype(z.dtype, copy=False)
        g /= 1 + e
        g -= t
        g *= 1.0 / n
        return loss, g

    def setup(self, wl, data, threads):
        z = data["logits"]
        if wl.kind == "softmax":
            return lambda: self.softmax(z, data["labels"], wl.grad)
        return lambda: self.sigmoid(z, data["targets"], wl.grad)


class SciPy(Impl):
    """``scipy.special.log_softmax`` (gradient ``exp(log_softmax) - onehot``) and
    ``scipy.special.log_expit`` (gradient ``expit(z) - t``); single-threaded."""

    name = "scipy.special"

    def unavailable(self):
        return _need("scipy.special")

    def versions(self):
        import scipy

        return {"scipy": scipy.__version__}

    def setup(self, wl, data, threads):
        from scipy import special

        z = data["logits"]
        n = wl.n_terms
        if wl.kind == "softmax":
            y = data["labels"]
            rows = np.arange(n)

            def run():
                lsm = special.log_softmax(z, axis=1)
                loss = -float(np.mean(lsm[rows, y], dtype=np.float64))
                if not wl.grad:
                    return loss, None
                g = np.exp(lsm, out=lsm)
                g[rows, y] -= 1
                g *= 1.0 / n
                return loss, g

            return run
        t = data["targets"]

        def run_sigmoid():
            loss = -float(np.mean(t * special.log_expit(z) + (1 - t) * special.log_expit(-z), dtype=np.float64))
            if not wl.grad:
                return loss, None
            g = special.expit(z)
            g -= t
            g *= 1.0 / n
            return loss, g

        return run_sigmoid


def torch_dtype(name):
    import torch

    return getattr(torch, name)


class Torch(Impl):
    """F.cross_entropy / F.binary_cross_entropy_with_logits, forward + backward
    (torch.autograd.grad, so every call returns a fresh gradient); forward alone under
    ``torch.no_grad()``. Half workloads run on torch.float16 / torch.bfloat16 tensors."""

    name = "pytorch"
    half_ok = True

    def unavailable(self):
        return _need("torch")

    def versions(self):
        import torch

        return {"torch": torch.__version__}

    def setup(self, wl, data, threads):
        import torch
        import torch.nn.functional as F

        torch.set_num_threads(threads)
        def tensor(a):  # torch.from_numpy knows no ml_dtypes bfloat16: through its bits
            if a.dtype.name == "bfloat16":
                return torch.from_numpy(a.view(np.uint16)).view(torch.bfloat16)
            return torch.from_numpy(a)

        z = tensor(data["logits"]).requires_grad_(wl.grad)
        if wl.kind == "softmax":
            y, loss_fn = torch.from_numpy(data["labels"]), F.cross_entropy
        else:
            y, loss_fn = tensor(data["targets"]), F.binary_cross_entropy_with_logits
        if not wl.grad:

            def forward():
                with torch.no_grad():
                    return loss_fn(z, y), None

            return forward

        def run():
            loss = loss_fn(z, y)
            (g,) = torch.autograd.grad(loss, z)
            return loss, g

        return run

    def result(self, out, wl):
        loss, g = out
        if g is not None and g.dtype not in (torch_dtype("float32"), torch_dtype("float64")):
            g = g.float()  # half gradients compared in float32 (NumPy has no bfloat16)
        return float(loss.item()), None if g is None else g.numpy()


class SkLearn(Impl):
    """sklearn._loss.loss.HalfMultinomialLoss / HalfBinomialLoss ``loss_gradient`` (or
    ``loss``) plus the mean of the per-sample losses. It needs float64 input, converted
    before timing (so for float32 workloads it moves twice the bytes); its gradient is per
    sample (not divided by the batch size)."""

    name = "scikit-learn (f64)"

    def unavailable(self):
        return _need("sklearn._loss.loss")

    def versions(self):
        import sklearn

        return {"sklearn": sklearn.__version__}

    def setup(self, wl, data, threads):
        from sklearn._loss.loss import HalfBinomialLoss, HalfMultinomialLoss

        z = data["logits"].astype(np.float64)
        if wl.kind == "softmax":
            loss_obj, y = HalfMultinomialLoss(n_classes=wl.shape[1]), data["labels"].astype(np.float64)
        else:
            loss_obj, y = HalfBinomialLoss(), data["targets"].astype(np.float64)
        if not wl.grad:
            return lambda: (float(loss_obj.loss(y, z, n_threads=threads).mean()), None)

        def run():
            loss, g = loss_obj.loss_gradient(y, z, n_threads=threads)
            return float(loss.mean()), g

        return run

    def result(self, out, wl):
        loss, g = out
        return loss, None if g is None else g / wl.n_terms


class Jax(Impl):
    """optax.softmax_cross_entropy_with_integer_labels / sigmoid_binary_cross_entropy,
    mean, under jax.jit(jax.value_and_grad(...)) (or jax.jit alone) on the CPU. XLA picks
    its own threads; a single-thread run sets XLA_FLAGS (only before jax is imported)."""

    name = "jax+optax"

    def unavailable(self):
        return _need("jax", "optax")

    def skip_at(self, threads):
        # XLA sizes its thread pool once, at import: a run over several thread counts times
        # JAX with all of them, so its single-thread figure needs a run of --threads 1 alone
        if threads == 1 and "intra_op_parallelism_threads=1" not in os.environ.get("XLA_FLAGS", ""):
            return "XLA's threads are fixed at import: run `--threads 1` alone for its 1-thread figures"
        return None

    def versions(self):
        import jax
        import optax

        return {"jax": jax.__version__, "optax": optax.__version__}

    def setup(self, wl, data, threads):
        import jax
        import optax

        # JAX runs in float32 unless told otherwise: without this the f64 workloads would be
        # downcast (and time a float32 computation).
        jax.config.update("jax_enable_x64", True)
        if wl.kind == "softmax":

            def f(z, y):
                return optax.softmax_cross_entropy_with_integer_labels(z, y).mean()

            y = jax.device_put(data["labels"].astype(np.int32))
        else:

            def f(z, t):
                return optax.sigmoid_binary_cross_entropy(z, t).mean()

            y = jax.device_put(data["targets"])
        z = jax.device_put(data["logits"])
        if not wl.grad:
            fwd = jax.jit(f)
            return lambda: (fwd(z, y).block_until_ready(), None)
        vg = jax.jit(jax.value_and_grad(f))

        def run():
            loss, g = vg(z, y)
            return loss, g.block_until_ready()

        return run

    def result(self, out, wl):
        loss, g = out
        return float(loss), None if g is None else np.asarray(g)


IMPLS: list[Impl] = [
    Copy(), NewCopy(), Read(), Xent(), XentInto(), XentAvx2Into(), NumPy(), SciPy(), Torch(), SkLearn(), Jax()
]
