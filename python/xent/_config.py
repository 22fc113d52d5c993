"""Build and run-time configuration."""
from __future__ import annotations

from . import _core


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("xent")
    except PackageNotFoundError:  # running from a source tree
        return "unknown"


def show_config(*, print_out: bool = True) -> dict:
    """Prints and returns xent's configuration: ``version``, ``isa`` (the kernel set in
    use: ``"scalar"``, ``"avx2"``, ``"avx512"`` or ``"neon"``), ``compiled_isas``,
    ``runnable_isas`` (compiled and supported by this CPU), ``n_threads`` (the default
    thread count) and ``spin_us`` (how long, in microseconds, idle worker threads poll for
    the next call before they sleep). Set ``XENT_ISA=scalar|avx2|avx512|neon`` before
    importing xent to force a kernel set, ``XENT_SPIN_US`` (0 to 1e6, default 100; 0: sleep
    at once) to change ``spin_us``."""
    c = _core.config()
    info = {
        "version": _version(),
        "isa": c["isa"],
        "compiled_isas": list(c["compiled_isas"]),
        "runnable_isas": list(c["runnable_isas"]),
        "n_threads": int(c["hardware_threads"]),
        "spin_us": float(c["spin_us"]),
    }
    if print_out:
        width = max(len(k) for k in info)
        for k, v in info.items():
            print(f"{k:<{width}} : {', '.join(v) if isinstance(v, list) else v}")
    return info
