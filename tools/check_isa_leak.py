"""Checks that a build of xent._core runs on any x86-64 CPU, from the object files of its
CMake build tree (the linked module is stripped, so its code cannot be attributed to
functions; objects keep their symbols):

- no object but the vector kernel sets' (isa_avx2*.cpp's and isa_avx512*.cpp's) holds an AVX
  instruction (VEX- or EVEX-encoded, or on ymm/zmm registers): a host-tuning or global ISA
  flag leaked into the build otherwise; the avx2 set holds no AVX-512 instruction (EVEX: zmm
  or opmask registers, or xmm/ymm16-31), the avx512 set does;
- those objects, compiled with -mavx2 -mfma -mf16c (and -mavx512f/dq/bw/vl), define no
  external symbol outside their namespace xent::avx2 / xent::avx512 but xent::isa_avx2() /
  xent::isa_avx512() (which dispatch.cpp calls only after checking the CPU): an inline
  function or template instantiated there could be picked by the linker for every caller
  (the ODR trap of per-file ISA flags), and crash older CPUs with SIGILL.

Usage: python tools/check_isa_leak.py CMAKE_BUILD_DIR   (x86-64; needs objdump and nm)
Exit status 0 when clean, 1 with the offenders listed.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

# object -> the kernel set (its namespace) it holds
SETS = {
    "isa_avx2.cpp.o": "avx2",
    "isa_avx2_sigopt.cpp.o": "avx2",
    "isa_avx512.cpp.o": "avx512",
    "isa_avx512_sigopt.cpp.o": "avx512",
}
# EVEX only: zmm and opmask registers, xmm/ymm 16-31, and mnemonics AVX2 does not have
AVX512_OPERAND = re.compile(r"%(zmm\d+|k[0-7]|[xy]mm(1[6-9]|2\d|3[01]))\b")
AVX512_MNEMONIC = re.compile(r"ternlog|vperm[it]2|\d+x\d+|scalef|getexp|getmant|rndscale|fixupimm|compress|expand|"
                             r"vpro[lr]|conflict|lzcnt|blendm")
FUNC = re.compile(r"^[0-9a-f]+ <(.*)>:$")
INSN = re.compile(r"^\s+[0-9a-f]+:\t(\S+)\s*(.*)$")


def _run(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def avx_functions(obj: Path) -> tuple[dict[str, int], dict[str, int]]:
    """Function name (demangled) -> number of AVX instructions in it, and of AVX-512 ones."""
    found: dict[str, int] = {}
    evex: dict[str, int] = {}
    fn = "?"
    for line in _run("objdump", "-d", "--no-show-raw-insn", "-C", str(obj)).splitlines():
        m = FUNC.match(line)
        if m:
            fn = m.group(1)
            continue
        m = INSN.match(line)
        # AT&T syntax: every VEX/EVEX instruction's mnemonic starts with "v" (vmovups, vfmadd...)
        if m and (m.group(1).startswith("v") or "%ymm" in m.group(2) or "%zmm" in m.group(2)):
            found[fn] = found.get(fn, 0) + 1
            if AVX512_OPERAND.search(m.group(2)) or AVX512_MNEMONIC.search(m.group(1)):
                evex[fn] = evex.get(fn, 0) + 1
    return found, evex


def exported(obj: Path) -> list[str]:
    """External symbols the object defines (functions, data, weak and unique ones)."""
    names = []
    for line in _run("nm", "-C", "--defined-only", str(obj)).splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in ("T", "D", "B", "R", "V", "W", "u"):
            names.append(parts[2])
    return names


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    objects = sorted(Path(argv[1]).rglob("*.o"))
    missing = [name for name in SETS if not any(o.name == name for o in objects)]
    if missing:
        print(f"{argv[1]}: no {', '.join(missing)} (is this an x86-64 CMake build tree of xent?)", file=sys.stderr)
        return 1
    bad = False
    for obj in objects:
        found, evex = avx_functions(obj)
        name = SETS.get(obj.name)
        if name:
            if not found:
                print(f"{obj}: no AVX code in the {name} kernel set", file=sys.stderr)
                bad = True
            if (name == "avx512") != bool(evex):
                bad = True
                what = "no AVX-512 code in" if name == "avx512" else "AVX-512 instructions in"
                print(f"{obj}: {what} the {name} kernel set", file=sys.stderr)
                for f, n in sorted(evex.items())[:20]:
                    print(f"  {n:5d}  {f}", file=sys.stderr)
            allowed = re.compile(rf"(^|\s)xent::{name}::|^xent::isa_{name}\(\)$")  # after a return type, if any
            leaks = [s for s in exported(obj) if not allowed.search(s)]
            if leaks:
                bad = True
                print(f"{obj}: defines symbols other files may link to, compiled for {name}:", file=sys.stderr)
                for s in leaks:
                    print(f"  {s}", file=sys.stderr)
            continue
        if found:
            bad = True
            print(f"{obj}: AVX instructions outside the vector kernel sets:", file=sys.stderr)
            for f, n in sorted(found.items()):
                print(f"  {n:5d}  {f}", file=sys.stderr)
    if bad:
        return 1
    print(f"{argv[1]}: AVX code only in {', '.join(SETS)} (AVX-512 only in the avx512 ones), which export only "
          f"their own namespace and isa_<name>() ({len(objects)} objects checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
