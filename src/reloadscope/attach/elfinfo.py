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

MAX_BYTES = 64 << 20  # a section table or symbol table larger than this is not believed
_SHT_SYMTAB, _SHT_DYNSYM = 2, 11
_MARKERS = (b"Py_Initialize", b"PyRun_SimpleString", b"PyGILState_Ensure")
# PY_VERSION, which the linker may store as the tail of another string ("Python-3.10.13").
_VERSION_STRING = rb"(?<![\d.])(3\.\d{1,2})\.\d+(?:[abrc+]\w*)?\x00"
_PYTHON = r"(^|/)(python|pypy)[\d.]*t?$"  # both compiled only when needed (re caches them)
# Exported only by free-threaded builds (3.13t+): their inline Py_DECREF calls it.  A content
# fact, unlike the "t" of "libpython3.13t.so" or "python3.13t", which any file can be named.
_FREE_THREADED = b"_Py_MergeZeroLocalRefcount"


class Interpreter:
    """The CPython found in a process: its ``major.minor`` and the file that carries it.
    (Not a dataclass: importing dataclasses would slow the start of every PID command.)"""

    __slots__ = ("free_threaded", "path", "version")

    def __init__(self, version: str, path: str, free_threaded: bool = False) -> None:
        self.version = version
        self.path = path
        self.free_threaded = free_threaded

    @property
    def label(self) -> str:
        """The version as people read it: ``3.13``, or ``3.13t`` for a free-threaded build."""
        return version_label(self.version, self.free_threaded)

    def __repr__(self) -> str:
        ft = ", free_threaded=True" if self.free_threaded else ""
        return f"Interpreter(version={self.version!r}, path={self.path!r}{ft})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Interpreter):
            return NotImplemented
        mine = (self.version, self.path, self.free_threaded)
        return mine == (other.version, other.path, other.free_threaded)

    def __hash__(self) -> int:
        return hash((self.version, self.path, self.free_threaded))


def version_label(version: str, free_threaded: bool) -> str:
    """``3.13`` -> ``3.13t`` for a free-threaded build (as its executable is named)."""
    return f"{version}t" if free_threaded else version


def python_version(pid: int) -> str | None:
    """The CPython ``major.minor`` a process runs, read from the ELF files it maps, never
    from a file name; None when unreadable."""
    found = interpreter(pid)
    return found.version if found is not None else None


def is_python(pid: int) -> bool:
    """Does the process run CPython (under any executable name: uWSGI, an embedding host, a
    copied binary)?  Decided by CPython's symbols in what it maps; see ``named_python`` for a
    process whose files cannot be read."""
    return interpreter(pid) is not None or named_python(pid)


def named_python(pid: int) -> bool:
    """For a process whose files cannot be read (another user's process, without root): a
    Python-looking name is taken at its word, so that attaching fails with the permission
    error, which says what to do.  False for a process whose files can be read."""
    readable = os.access(f"/proc/{pid}/exe", os.R_OK)
    exe = _exe(pid)
    if exe is None:
        return False
    return not readable and bool(
        re.search(_PYTHON, os.path.realpath(exe)) or re.search(_PYTHON, process_name(pid))
    )


def _exe(pid: int) -> str | None:
    """The executable's path as the kernel names it ("" for a zombie), None when it cannot
    be read (as psutil's ``Process.exe()``)."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe").split("\x00")[0]
    except (FileNotFoundError, ProcessLookupError):
        return "" if os.path.lexists(f"/proc/{pid}") else None
    except OSError:
        return None
    if exe.endswith(" (deleted)") and not os.path.exists(exe):
        exe = exe[: -len(" (deleted)")]
    return exe


def process_name(pid: int) -> str:
    """The process's name: its ``comm``, or the name it was started as when ``comm`` is that
    name cut to 15 characters (as psutil's ``Process.name()``); "" when unreadable."""
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as fh:
            comm = fh.read().rstrip("\n")
    except OSError:
        return ""
    if len(comm) >= 15:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                first = fh.read().split(b"\x00")[0].decode("utf-8", "replace")
        except OSError:
            first = ""
        longer = os.path.basename(first)
        if longer.startswith(comm):
            return longer
    return comm


def interpreter(pid: int) -> Interpreter | None:
    """The CPython a process runs, from its mapped libpython or its executable; None when
    neither exports CPython's symbols (not a CPython, or unreadable)."""
    for shown, openable in _candidates(pid):
        try:
            with open(openable, "rb") as fh:
                version, free_threaded = _read(fh)
        except (OSError, ValueError, struct.error):
            continue
        if version is not None:
            return Interpreter(version, shown, free_threaded)
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
    return _read(fh)[0]


def _read(fh) -> tuple[str | None, bool]:  # type: ignore[no-untyped-def]
    """(``"3.X"`` of the CPython this ELF file carries, or None; whether it is a free-threaded
    build: it exports ``_FREE_THREADED``)."""
    version, found = _scan(fh)
    return version, version is not None and _FREE_THREADED in found


def _scan(fh) -> tuple[str | None, dict[bytes, int]]:  # type: ignore[no-untyped-def]
    header = fh.read(64)
    if header[:4] != b"\x7fELF" or header[4] != 2:  # ELFCLASS64 only
        return None, {}
    end = "<" if header[5] == 1 else ">"
    (shoff,) = struct.unpack_from(end + "Q", header, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", header, 0x3A)
    if shentsize != 64 or not 0 < shnum < 65536 or shnum * 64 > MAX_BYTES:
        return None, {}
    fh.seek(shoff)
    table = fh.read(shnum * 64)
    sections = [struct.unpack_from(end + "IIQQQQIIQQ", table, i * 64) for i in range(shnum)]
    symbols = [s for s in sections if s[1] in (_SHT_DYNSYM, _SHT_SYMTAB)]
    found: dict[bytes, int] = {}
    for sym in symbols:
        if len(found) == 2 + len(_MARKERS):
            break  # all found (in .dynsym): .symtab, ten times larger, need not be read
        strtab = sections[sym[6]] if sym[6] < shnum else None
        if strtab is None or sym[5] > MAX_BYTES or strtab[5] > MAX_BYTES:
            continue
        fh.seek(strtab[4])
        names = fh.read(strtab[5])
        fh.seek(sym[4])
        data = fh.read(sym[5])
        for name in (b"Py_Version", _FREE_THREADED, *_MARKERS):
            if name in found:
                continue
            at = names.find(b"\x00" + name + b"\x00")
            if at < 0:
                continue
            value = _symbol_value(data, at + 1, end)
            if value is not None:
                found[name] = value
    if not any(m in found for m in _MARKERS):
        return None, found
    if b"Py_Version" in found:
        raw = _read_at(fh, sections, found[b"Py_Version"], end)
        if raw is not None:
            major, minor = raw >> 24 & 0xFF, raw >> 16 & 0xFF
            if major == 3:
                return f"3.{minor}", found
    return _version_string(fh, sections, shstrndx), found


def _symbol_value(data: bytes, name_offset: int, end: str) -> int | None:
    """st_value of the defined symbol whose name starts at ``name_offset`` of the string
    table (Elf64_Sym: name, info, other, shndx, value, size).  The table is searched for the
    name's offset in C (``bytes.find``): unpacking each of libpython's ~20,000 symbols cost
    every PID command 2 ms."""
    needle = struct.pack(end + "I", name_offset)
    limit = len(data) - 23  # the last whole entry starts before this
    i = data.find(needle)
    while 0 <= i < limit:
        if i % 24 == 0:
            _name, _info, _other, shndx, value, _size = struct.unpack_from(end + "IBBHQQ", data, i)
            if shndx != 0:
                return int(value)
        i = data.find(needle, i + 1)
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
        for m in re.finditer(_VERSION_STRING, fh.read(s[5])):
            counts[m.group(1)] = counts.get(m.group(1), 0) + 1
        if counts:
            return max(counts, key=counts.__getitem__).decode()
    return None
