"""Checks that a build of xent._core runs on any x86-64 CPU, from the object files of its
CMake build tree (the linked module is stripped, so its code cannot be attributed to
functions; objects keep their symbols):

- no object but the avx2 kernel set's (isa_avx2.cpp's and isa_avx2_sigopt.cpp's) holds an AVX
  instruction (VEX-encoded, or on ymm/zmm registers): a host-tuning or global ISA flag
  leaked into the build otherwise;
- those objects, compiled with -mavx2 -mfma -mf16c, define no external symbol outside the
  namespace xent::avx2 but xent::isa_avx2() (which dispatch.cpp calls only after checking
  the CPU): an inline function or template instantiated there could be picked by the linker
  for every caller (the ODR trap of per-file ISA flags), and crash older CPUs with SIGILL.

Usage: python tools/check_isa_leak.py CMAKE_BUILD_DIR   (x86-64; needs objdump and nm)
Exit status 0 when clean, 1 with the offenders listed.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

AVX2_OBJECTS = ("isa_avx2.cpp.o", "isa_avx2_sigopt.cpp.o")
ALLOWED_EXPORT = re.compile(r"(^|\s)xent::avx2::|^xent::isa_avx2\(\)$")  # after a return type, if any
FUNC = re.compile(r"^[0-9a-f]+ <(.*)>:$")
INSN = re.compile(r"^\s+[0-9a-f]+:\t(\S+)\s*(.*)$")


def _run(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def avx_functions(obj: Path) -> dict[str, int]:
    """Function name (demangled) -> number of AVX instructions in it."""
    found: dict[str, int] = {}
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
    return found


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
    missing = [name for name in AVX2_OBJECTS if not any(o.name == name for o in objects)]
    if missing:
        print(f"{argv[1]}: no {', '.join(missing)} (is this an x86-64 CMake build tree of xent?)", file=sys.stderr)
        return 1
    bad = False
    for obj in objects:
        if obj.name in AVX2_OBJECTS:
            if not avx_functions(obj):
                print(f"{obj}: no AVX code in the avx2 kernel set", file=sys.stderr)
                bad = True
            leaks = [s for s in exported(obj) if not ALLOWED_EXPORT.search(s)]
            if leaks:
                bad = True
                print(f"{obj}: defines symbols other files may link to, compiled for AVX2:", file=sys.stderr)
                for s in leaks:
                    print(f"  {s}", file=sys.stderr)
            continue
        found = avx_functions(obj)
        if found:
            bad = True
            print(f"{obj}: AVX instructions outside the avx2 kernel set:", file=sys.stderr)
            for f, n in sorted(found.items()):
                print(f"  {n:5d}  {f}", file=sys.stderr)
    if bad:
        return 1
    print(f"{argv[1]}: AVX code only in {' and '.join(AVX2_OBJECTS)}, which export only xent::avx2:: and "
          f"xent::isa_avx2() "
          f"({len(objects)} objects checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
