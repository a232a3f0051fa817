"""The functions of an ELF object, from its symbol table, to name the addresses of a crash:
an offset from the object's load base is a virtual address of the file (plus the first
PT_LOAD's p_vaddr, 0 for a shared object), and the function is the STT_FUNC symbol whose
[st_value, st_value + st_size) holds it. `.symtab` (the build tree's unstripped objects
keep their static functions there) wins; a stripped object has `.dynsym` only, which names
its exported functions."""

from __future__ import annotations

import bisect
import io
from dataclasses import dataclass

from elftools.elf.elffile import ELFFile

FUNCTION_TYPES = ("STT_FUNC", "STT_LOOS")  # STT_LOOS: STT_GNU_IFUNC (memcpy and the like)


@dataclass(frozen=True)
class Functions:
    """One object's functions, sorted by start."""

    table: str  # ".symtab" or ".dynsym"
    load_vaddr: int  # p_vaddr of the first PT_LOAD
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    names: tuple[str, ...]

    def at(self, offset: int) -> tuple[str, int] | None:
        """(function, offset inside it) of an offset from the load base; None when no
        function of the table holds it."""
        vaddr = offset + self.load_vaddr
        first = bisect.bisect_right(self.starts, vaddr) - 1
        # the nearest start at or before it; a few more back for a function that encloses
        # another (rare: the nearest one usually holds it, or none does)
        for i in range(first, max(first - 8, -1), -1):
            if vaddr < self.ends[i]:
                return self.names[i], vaddr - self.starts[i]
        return None


def read_functions(data: bytes, name: str = "the object") -> Functions | str:
    """The object's function table, or why there is none. The object is untrusted (it comes
    from an image of anyone's): whatever the parser raises on it (ELFError, but also
    OverflowError on an offset of 2**63, struct.error, IndexError...) becomes the reason."""
    if not data.startswith(b"\x7fELF"):
        return f"could not read symbols of {name}: not an ELF object"
    try:
        return _read(data)
    except Exception as exc:  # any parser error is a reason, never a crash of the run
        return f"could not read symbols of {name}: {type(exc).__name__}: {exc}"


def _read(data: bytes) -> Functions | str:
    elf = ELFFile(io.BytesIO(data))
    loads = [s["p_vaddr"] for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
    for table in (".symtab", ".dynsym"):
        section = elf.get_section_by_name(table)
        if section is None or not hasattr(section, "iter_symbols"):
            continue
        found: dict[int, tuple[int, str]] = {}
        for sym in section.iter_symbols():
            start, size = int(sym["st_value"]), int(sym["st_size"])
            if sym["st_info"]["type"] not in FUNCTION_TYPES or size <= 0 or not sym.name:
                continue
            known = found.get(start)
            if known is None or _nicer(str(sym.name), known[1]):
                found[start] = (start + size, str(sym.name))
        if found:
            starts = sorted(found)
            return Functions(
                table,
                min(loads, default=0),
                tuple(starts),
                tuple(found[s][0] for s in starts),
                tuple(found[s][1] for s in starts),
            )
    return "no function symbols (.symtab and .dynsym empty or absent)"


def _nicer(name: str, than: str) -> bool:
    """Of aliases at one address, the public name: pthread_rwlock_rdlock, not
    __pthread_rwlock_rdlock."""
    return (name.startswith("_"), len(name), name) < (than.startswith("_"), len(than), than)
