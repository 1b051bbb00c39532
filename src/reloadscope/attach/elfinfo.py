"""What a process's own files say about the CPython in it: read from its mapped ELF objects.

A process's executable name proves nothing (uWSGI, Blender and copied binaries embed CPython;
any user can name a file ``python3.14``).  The interpreter itself can: its executable or the
libpython it maps exports CPython's symbols, and ``Py_Version`` (3.11+) is a constant whose
value sits in the file.  Files are read through ``/proc/PID/exe`` and ``/proc/PID/map_files``
where possible, which name the very inode the process maps, not whatever a path now holds.
Nothing here executes anything.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass

MAX_BYTES = 64 << 20  # a section table or symbol table larger than this is not believed
_SHT_SYMTAB, _SHT_DYNSYM = 2, 11
_MARKERS = (b"Py_Initialize", b"PyRun_SimpleString", b"PyGILState_Ensure")
# PY_VERSION, which the linker may store as the tail of another string ("Python-3.10.13").
_VERSION_STRING = re.compile(rb"(?<![\d.])(3\.\d{1,2})\.\d+(?:[abrc+]\w*)?\x00")


@dataclass(frozen=True)
class Interpreter:
    """The CPython found in a process: its ``major.minor`` and the file that carries it."""

    version: str
    path: str


def interpreter(pid: int) -> Interpreter | None:
    """The CPython a process runs, from its mapped libpython or its executable; None when
    neither exports CPython's symbols (not a CPython, or unreadable)."""
    for shown, openable in _candidates(pid):
        try:
            with open(openable, "rb") as fh:
                version = _version(fh)
        except (OSError, ValueError, struct.error):
            continue
        if version is not None:
            return Interpreter(version, shown)
    return None


def _candidates(pid: int) -> list[tuple[str, str]]:
    """(path shown, path to open) of the libpython objects the process maps, then its
    executable."""
    out: list[tuple[str, str]] = []
    try:
        with open(f"/proc/{pid}/maps") as fh:
            lines = fh.read().splitlines()
    except OSError:
        lines = []
    seen: set[str] = set()
    for line in lines:
        fields = line.split(maxsplit=5)
        if len(fields) < 6 or fields[2] != "00000000":
            continue
        path = fields[5]
        if "libpython" not in os.path.basename(path) or path in seen:
            continue
        seen.add(path)
        by_inode = f"/proc/{pid}/map_files/{fields[0]}"
        out.append((path, by_inode if os.access(by_inode, os.R_OK) else path))
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        exe = "?"
    out.append((exe, f"/proc/{pid}/exe"))
    return out


def _version(fh) -> str | None:  # type: ignore[no-untyped-def]
    """``"3.X"`` of the CPython this ELF file carries, or None."""
    header = fh.read(64)
    if header[:4] != b"\x7fELF" or header[4] != 2:  # ELFCLASS64 only
        return None
    end = "<" if header[5] == 1 else ">"
    (shoff,) = struct.unpack_from(end + "Q", header, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", header, 0x3A)
    if shentsize != 64 or not 0 < shnum < 65536 or shnum * 64 > MAX_BYTES:
        return None
    fh.seek(shoff)
    table = fh.read(shnum * 64)
    sections = [struct.unpack_from(end + "IIQQQQIIQQ", table, i * 64) for i in range(shnum)]
    symbols = [s for s in sections if s[1] in (_SHT_DYNSYM, _SHT_SYMTAB)]
    found: dict[bytes, int] = {}
    for sym in symbols:
        strtab = sections[sym[6]] if sym[6] < shnum else None
        if strtab is None or sym[5] > MAX_BYTES or strtab[5] > MAX_BYTES:
            continue
        fh.seek(strtab[4])
        names = fh.read(strtab[5])
        fh.seek(sym[4])
        data = fh.read(sym[5])
        for name in (b"Py_Version", *_MARKERS):
            if name in found:
                continue
            at = names.find(b"\x00" + name + b"\x00")
            if at < 0:
                continue
            value = _symbol_value(data, at + 1, end)
            if value is not None:
                found[name] = value
    if not any(m in found for m in _MARKERS):
        return None
    if b"Py_Version" in found:
        raw = _read_at(fh, sections, found[b"Py_Version"], end)
        if raw is not None:
            major, minor = raw >> 24 & 0xFF, raw >> 16 & 0xFF
            if major == 3:
                return f"3.{minor}"
    return _version_string(fh, sections, shstrndx)


def _symbol_value(data: bytes, name_offset: int, end: str) -> int | None:
    """st_value of the defined symbol whose name starts at ``name_offset`` of the string
    table (Elf64_Sym: name, info, other, shndx, value, size)."""
    for i in range(0, len(data) - 23, 24):
        st_name, _info, _other, shndx, value, _size = struct.unpack_from(end + "IBBHQQ", data, i)
        if st_name == name_offset and shndx != 0:
            return int(value)
    return None


def _read_at(fh, sections: list[tuple], address: int, end: str) -> int | None:  # type: ignore[no-untyped-def]
    """The 4-byte value at a virtual address, read from the section that holds it."""
    for s in sections:
        addr, offset, size = s[3], s[4], s[5]
        if s[1] != 8 and addr <= address < addr + size - 3:  # not SHT_NOBITS (.bss)
            fh.seek(offset + address - addr)
            return int(struct.unpack(end + "I", fh.read(4))[0])
    return None


def _version_string(fh, sections: list[tuple], shstrndx: int) -> str | None:  # type: ignore[no-untyped-def]
    """3.10 and older have no ``Py_Version``: their read-only data holds ``PY_VERSION``
    ("3.10.13"); the most frequent such string there is taken."""
    if not 0 <= shstrndx < len(sections):
        return None
    names_s = sections[shstrndx]
    fh.seek(names_s[4])
    names = fh.read(min(names_s[5], MAX_BYTES))
    for s in sections:
        name = names[s[0] : names.find(b"\x00", s[0])]
        if name != b".rodata" or s[5] > MAX_BYTES:
            continue
        fh.seek(s[4])
        counts: dict[bytes, int] = {}
        for m in _VERSION_STRING.finditer(fh.read(s[5])):
            counts[m.group(1)] = counts.get(m.group(1), 0) + 1
        if counts:
            return max(counts, key=counts.__getitem__).decode()
    return None
