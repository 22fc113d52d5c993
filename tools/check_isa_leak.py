"""Checks that a built xent._core runs on any x86-64 CPU: AVX instructions (VEX-encoded, or on
ymm/zmm registers) may appear only in code compiled from cpp/src/isa_avx2.cpp, i.e. in
functions of the namespace xent::avx2 and in xent::isa_avx2(), which dispatch.cpp calls only
after checking the CPU. Anything else means a host-tuning flag leaked into the build, or an
inline function instantiated in the AVX2 file was picked by the linker for everyone (the
ODR trap of per-file ISA flags); either crashes with SIGILL on an older CPU.

Usage: python tools/check_isa_leak.py PATH/TO/_core*.so   (x86-64 ELF; needs objdump)
Exit status 0 when clean, 1 with the offending functions listed.
"""
from __future__ import annotations

import re
import subprocess
import sys

ALLOWED = re.compile(r"xent::avx2::|^xent::isa_avx2\(\)")
FUNC = re.compile(r"^[0-9a-f]+ <(.*)>:$")
INSN = re.compile(r"^\s+[0-9a-f]+:\t(\S+)\s*(.*)$")


def avx_functions(path: str) -> dict[str, int]:
    """Function name (demangled) -> number of AVX instructions in it."""
    dis = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", "-C", path], capture_output=True, text=True, check=True
    ).stdout
    found: dict[str, int] = {}
    fn = "?"
    for line in dis.splitlines():
        m = FUNC.match(line)
        if m:
            fn = m.group(1).split("@@")[0]
            continue
        m = INSN.match(line)
        if not m:
            continue
        mnemonic, operands = m.groups()
        # AT&T syntax: every VEX/EVEX instruction's mnemonic starts with "v" (vmovups, vfmadd...)
        if mnemonic.startswith("v") or "%ymm" in operands or "%zmm" in operands:
            found[fn] = found.get(fn, 0) + 1
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    found = avx_functions(argv[1])
    leaked = {f: n for f, n in found.items() if not ALLOWED.search(f)}
    allowed = len(found) - len(leaked)
    if not allowed:
        print(f"{argv[1]}: no AVX code at all (was the avx2 kernel set built?)", file=sys.stderr)
        return 1
    if leaked:
        print(f"{argv[1]}: AVX instructions outside the avx2 kernel set:", file=sys.stderr)
        for f, n in sorted(leaked.items()):
            print(f"  {n:5d}  {f}", file=sys.stderr)
        return 1
    print(f"{argv[1]}: AVX code only in the avx2 kernel set ({allowed} functions)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
