"""``reloadscope run [-m MODULE | -c CODE | SCRIPT] [ARGS...]``: recording from line one."""

from __future__ import annotations

import argparse
import os
import sys

from .errors import UserError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def add_parser(sub: Any, summary: str) -> None:
    p = sub.add_parser(
        "run",
        help=summary,
        description=(
            "Runs SCRIPT (or -m MODULE, or -c CODE) like python would, with every generation "
            "recorded and an agent listening, so 'reloadscope attach/report/snapshot PID' work "
            "later without injection. Everything after SCRIPT, -m MODULE or -c CODE goes to the "
            "program untouched. RELOADSCOPE_SNAPSHOT_ON_EXIT=FILE writes a post-mortem snapshot."
        ),
        epilog=(
            "Examples: reloadscope run serve.py --port 8000; reloadscope run -m mybot; "
            "reloadscope run --python .venv/bin/python -m myapp"
        ),
    )
    p.add_argument(
        "--python",
        metavar="PATH",
        help=(
            "run the program with this CPython 3.10+ instead (e.g. a project's venv python "
            "when reloadscope is installed with pipx): the agent is loaded into it from text, "
            "so that environment needs no reloadscope"
        ),
    )
    p.add_argument("-m", dest="module", metavar="MODULE", help="run a library module as a script")
    p.add_argument("-c", dest="code", metavar="CODE", help="run a string of code, as python -c")
    p.add_argument(
        "args",
        nargs=argparse.REMAINDER,
        metavar="[SCRIPT] ARGS",
        help="the script and its arguments",
    )


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """``run``'s own options, and the program's command line (``-m MODULE ...``, ``-c CODE
    ...`` or ``SCRIPT ...``), which starts at the first argument that is not an option."""
    skip = False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a == "--python":
            skip = True
            continue
        if a in ("-m", "-c"):
            if i + 1 == len(argv):
                return argv, []  # argparse says that the option needs a value
            return argv[:i], argv[i:]
        if a[:2] in ("-m", "-c"):  # -mjson.tool, as python accepts
            return argv[:i], [a[:2], a[2:], *argv[i + 1 :]]
        if a == "--":
            return argv[:i], argv[i + 1 :]
        if not a.startswith("-") or a == "-":
            return argv[:i], argv[i:]
    return argv, []


# The script ``run --python`` gives the other interpreter, from a memfd (``python
# /proc/self/fd/N PROGRAM...``): it reads the agent's sources from a second memfd, closes both,
# loads the agent under its private name, starts recording and listening, and runs the program.
LAUNCHER = """
import os, sys
def _reloadscope_launch(script_fd, data_fd):
    os.close(script_fd)
    data = []
    while True:
        piece = os.read(data_fd, 1 << 20)
        if not piece:
            break
        data.append(piece)
    os.close(data_fd)
    parts = b"".join(data).decode("utf-8").split("\\0")
    sources = {parts[i]: (parts[i + 1], parts[i + 2]) for i in range(0, len(parts) - 2, 3)}
    del data, parts
    class Finder:
        def find_spec(self, name, path=None, target=None):
            if name not in sources:
                return None
            spec = type(sys.__spec__)(name, self, origin=sources[name][0], is_package=name == NAME)
            if name == NAME:
                spec.submodule_search_locations = [DIR]
            spec.has_location = True
            return spec
        def create_module(self, spec):
            return None
        def exec_module(self, module):
            filename, text = sources[module.__spec__.name]
            exec(compile(text, filename, "exec"), module.__dict__)
    finder = Finder()
    sys.meta_path.insert(0, finder)
    try:
        for name in sorted(sources):
            __import__(name)
    finally:
        sys.meta_path.remove(finder)
        sources.clear()
    agent = sys.modules[NAME]
    launch = sys.modules[NAME + ".launch"]
    postmortem = sys.modules[NAME + ".postmortem"]
    agent.install()
    try:
        agent.listen()
    except OSError as e:
        print(f"reloadscope: warning: not listening for attach: {e}", file=sys.stderr)
    target = os.environ.get("RELOADSCOPE_SNAPSHOT_ON_EXIT")
    if target:
        postmortem.arm(os.path.abspath(target), agent.scan)
    try:
        return launch.run(sys.argv[1:])
    except launch.LaunchError as e:
        postmortem.disarm()
        agent.uninstall()
        print(f"reloadscope: error: {e}", file=sys.stderr)
        return 2
sys.exit(_reloadscope_launch(SCRIPT_FD, DATA_FD))
"""


def _check_script(path: str) -> None:
    from ..agent.launch import LaunchError, check_script

    try:
        check_script(path)
    except LaunchError as e:
        raise UserError(str(e)) from None


def _interpreter(python: str) -> str:
    """The executable ``--python`` names, checked to be a CPython 3.10+ that runs here."""
    import shutil
    import subprocess

    exe = python if os.sep in python else shutil.which(python)
    if exe is None or not os.path.isfile(exe):
        raise UserError(f"--python {python}: no such interpreter")
    if not os.access(exe, os.X_OK):
        raise UserError(f"--python {python}: not executable")
    probe = "import sys; print(sys.implementation.name, *sys.version_info[:2])"
    try:
        p = subprocess.run(
            [exe, "-I", "-c", probe], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UserError(f"--python {python}: cannot run it ({e})") from None
    out = p.stdout.split()
    if len(out) != 3 or out[0] != "cpython" or (int(out[1]), int(out[2])) < (3, 10):
        said = next((ln.strip() for ln in p.stderr.splitlines() if ln.strip()), "")
        raise UserError(
            f"--python {python}: not a CPython 3.10 or newer" + (f" ({said})" if said else "")
        )
    return os.path.abspath(exe)


def _memfd(name: str, text: str) -> int:
    """An inheritable memfd holding ``text``, read from its start."""
    fd = os.memfd_create(name, 0)
    view = memoryview(text.encode("utf-8"))
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    os.set_inheritable(fd, True)
    return fd


def _run_with(python: str, program: list[str]) -> int:
    """Replace this process with ``python`` running the program and the agent (loaded from
    text: that interpreter needs no reloadscope).  The program keeps this process's PID."""
    from ..attach.inject import AGENT_DIR, PRIVATE_NAME, agent_sources

    exe = _interpreter(python)
    if program[0] not in ("-m", "-c"):
        _check_script(program[0])
    # memfds, not files: nothing another user could change, and nothing left behind.
    data_fd = _memfd("reloadscope-agent", agent_sources())
    code = (
        LAUNCHER.replace("NAME", repr(PRIVATE_NAME))
        .replace("DIR", repr(str(AGENT_DIR)))
        .replace("DATA_FD", str(data_fd))
    )
    script_fd = _memfd("reloadscope-run", "")
    code = code.replace("SCRIPT_FD", str(script_fd))
    view = memoryview(code.encode("utf-8"))
    while view:
        view = view[os.write(script_fd, view) :]
    os.lseek(script_fd, 0, os.SEEK_SET)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(exe, [exe, f"/proc/self/fd/{script_fd}", *program])
    return 2  # not reached


def run(args: argparse.Namespace) -> int:
    program: list[str] | None = getattr(args, "program", None)
    if program is None:  # parsed without split_argv: rebuild the command line
        own = ["-m", args.module] if args.module else ["-c", args.code] if args.code else []
        program = [*own, *args.args]
    if not program:
        raise UserError("give a SCRIPT, -m MODULE or -c CODE to run")
    if program[0] in ("-m", "-c") and len(program) == 1:
        raise UserError(f"argument {program[0]}: expected one argument")
    if getattr(args, "python", None):
        return _run_with(args.python, program)
    import reloadscope

    from ..agent import launch

    if program[0] not in ("-m", "-c"):
        _check_script(program[0])
    reloadscope.install()
    try:
        return launch.run(program)
    except launch.LaunchError as e:
        reloadscope.uninstall()
        raise UserError(str(e)) from None
