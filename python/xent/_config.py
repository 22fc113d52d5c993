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
    ``runnable_isas`` (compiled and supported by this CPU) and ``n_threads`` (the default
    thread count). Set ``XENT_ISA=scalar|avx2|avx512|neon`` before importing xent to force a
    kernel set."""
    c = _core.config()
    info = {
        "version": _version(),
        "isa": c["isa"],
        "compiled_isas": list(c["compiled_isas"]),
        "runnable_isas": list(c["runnable_isas"]),
        "n_threads": int(c["hardware_threads"]),
    }
    if print_out:
        width = max(len(k) for k in info)
        for k, v in info.items():
            print(f"{k:<{width}} : {', '.join(v) if isinstance(v, list) else v}")
    return info
