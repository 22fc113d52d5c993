"""Quick timings of the from-probabilities losses and log_loss against NumPy / scikit-learn
(best of 5, one call each; a rough figure, not the full benchmark of bench/run.py).

    python bench/proba_quick.py
"""
import timeit

import numpy as np

import xent
from xent.metrics import log_loss


def best(f, n=5):
    return min(timeit.repeat(f, number=1, repeat=n)) * 1e3


def keras_numpy(p, y, eps=1e-7):
    q = np.clip(p / p.sum(-1, keepdims=True), eps, 1 - eps)
    return float(-np.log(q[np.arange(len(y)), y]).mean())


def main():
    rng = np.random.default_rng(0)
    p = rng.random((4096, 1000)).astype(np.float32)
    y = rng.integers(0, 1000, 4096)
    cce = xent.categorical_cross_entropy
    print(
        f"categorical_cross_entropy 4096x1000 float32: xent loss {best(lambda: cce(p, y)):.2f} ms,"
        f" loss+grad {best(lambda: cce(p, y, return_grad=True)):.2f} ms;"
        f" NumPy Keras formula (loss only) {best(lambda: keras_numpy(p, y)):.2f} ms"
    )
    P = rng.dirichlet(np.ones(10), 200_000)
    Y = rng.integers(0, 10, 200_000)
    line = f"log_loss 200000x10 float64: xent {best(lambda: log_loss(Y, P)):.2f} ms"
    try:
        import sklearn.metrics as skm

        line += f", sklearn {best(lambda: skm.log_loss(Y, P)):.2f} ms"
    except ImportError:
        pass
    print(line)


if __name__ == "__main__":
    main()
