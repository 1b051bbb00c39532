"""Run reload scenarios in fresh interpreters.

A test writes real module files into a temporary directory, then runs a child script in a new
interpreter (any CPython: the engine is stdlib only).  The child imports and reloads those files
for real and reports back with ``rs.report()``, which also evaluates every module-rooted path in
the child and records whether it gave back exactly the reported object.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

SRC = str(Path(__file__).resolve().parent.parent / "src")
MARK = "@@RS-JSON@@"

# A target's first lines: it writes plug.py in its working directory, imports it, keeps its f
# in __main__.keep, changes the file and reloads it, so that process has one stale function.
RELOADED_PLUG = """
import importlib, os, sys, time
sys.path.insert(0, os.getcwd())
with open("plug.py", "w") as fh:
    fh.write("def f():\\n    return 1\\n")
import plug
keep = plug.f
with open("plug.py", "w") as fh:
    fh.write("def f():\\n    return 2\\n")
t = time.time() + 10
os.utime("plug.py", (t, t))
importlib.reload(plug)
"""

CHILD_HELPERS = r'''
"""Helpers importable as ``rs`` inside a scenario's child interpreter."""
import importlib, json, os, sys, time

_bump = [0]

def write(rel, text):
    """Write a module file with a fresh mtime (so no stale .pyc is ever used)."""
    import textwrap
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(textwrap.dedent(text))
    _bump[0] += 10
    t = time.time() + _bump[0]
    os.utime(path, (t, t))
    importlib.invalidate_caches()
    return path

def edit(module, text):
    """Rewrite ``module``'s file and reload it."""
    here = os.path.dirname(os.path.abspath(__file__))
    write(os.path.relpath(module.__file__, here), text)
    return importlib.reload(module)

def evaluate(text):
    """Evaluate a module path with its module imported (also inside ``gc.get_referents(...)``)."""
    inner = text.rsplit("get_referents(", 1)[-1] if text.startswith("__import__") else text
    head = inner.split(".")[0].split("[")[0]
    return eval(text, {head: importlib.import_module(head)})

def judged_alike(doc):
    """What a scan that judges every function one by one (``Scan(judge_all=True)``: none is
    passed over in bulk) finds that ``doc`` does not, and the reverse: the reference for the
    shortcuts of every scan (``Classifier.functions_worth_judging``, ``Sources.index``)."""
    from reloadscope import agent
    from reloadscope.agent.scan import Scan
    ref = Scan(agent.recorder(), judge_all=True).run()[0]
    def found(d):
        return {
            (m["name"], s["kind"], s["qualname"], s["generation"], s["count"],
             json.dumps(s["evidence"], sort_keys=True))
            for m in d["modules"] for s in m["stale"]
        }
    mine, theirs = found(doc), found(ref)
    # (What gc.freeze() froze is counted anew: the reference scan's heap is not the same.)
    spots = tuple(
        [b for b in d["scan"].get("blind_spots", []) if "gc.freeze()" not in b]
        for d in (doc, ref)
    )
    return {
        "missed": sorted(map(list, theirs - mine)),
        "extra": sorted(map(list, mine - theirs)),
        "blind_spots": [] if spots[0] == spots[1] else list(spots),
    }

def report(doc=None, **extra):
    """Print the report (scan now unless given) with path evaluation results, and how a
    scan judging every function one by one differs from it (``judged_alike``)."""
    import reloadscope
    if doc is None:
        doc = reloadscope.scan().to_json()
        try:
            doc["_judged_alike"] = judged_alike(doc)
        except Exception as e:  # (the parent's check then fails, saying why)
            doc["_judged_alike"] = {"error": repr(e)}
    checks = []
    for m in doc["modules"]:
        for s in m["stale"]:
            for p in s["paths"]:
                if p["root"] != "module":
                    continue
                try:
                    ok = id(evaluate(p["text"])) == p["object_id"]
                    err = None
                except Exception as e:
                    ok, err = False, repr(e)
                checks.append({"text": p["text"], "ok": ok, "error": err})
    doc["_path_checks"] = checks
    doc["_extra"] = extra
    sys.stdout.write("\n@@RS-JSON@@" + json.dumps(doc) + "\n")
    sys.stdout.flush()
'''


BIG_CONTAINERS = """
import sys, types
_m = types.ModuleType("_rs_big_containers")
_m.rows = [[i] for i in range(20_000)]
_m.index = {str(i): [i] for i in range(20_000)}
sys.modules[_m.__name__] = _m
del _m
"""


# Every instance of a stale class counted in bulk (``scan.LISTED_PER_CLASS``): the scan then
# finds the instances it shows by their class, as it does for a class with very many.
BULK_INSTANCES = """
import importlib
importlib.import_module("reloadscope.agent.scan").LISTED_PER_CLASS = 0
"""


class Result:
    """The child's report document plus helpers to query it."""

    def __init__(self, doc: dict[str, Any], stdout: str, stderr: str) -> None:
        self.doc = doc
        self.stdout = stdout
        self.stderr = stderr
        self.extra = doc.get("_extra", {})
        self.path_checks = doc.get("_path_checks", [])

    def module(self, name: str) -> dict[str, Any]:
        for m in self.doc["modules"]:
            if m["name"] == name:
                return m
        raise AssertionError(
            f"module {name!r} not in report: {[m['name'] for m in self.doc['modules']]}"
        )

    def stale(self, module: str | None = None, **match: Any) -> list[dict[str, Any]]:
        """Stale entries (of one module, or all) whose fields equal ``match``."""
        mods = [self.module(module)] if module else self.doc["modules"]
        return [s for m in mods for s in m["stale"] if all(s.get(k) == v for k, v in match.items())]

    def one(self, module: str, **match: Any) -> dict[str, Any]:
        found = self.stale(module, **match)
        assert len(found) == 1, (
            f"expected one entry {match} in {module}, got {found}\nall: {self.stale(module)}"
        )
        return found[0]

    def texts(self, entry: dict[str, Any]) -> list[str]:
        return [p["text"] for p in entry["paths"]]

    def all_stale(self) -> list[dict[str, Any]]:
        return [s for m in self.doc["modules"] for s in m["stale"]]

    def assert_paths_evaluate(self) -> None:
        bad = [c for c in self.path_checks if not c["ok"]]
        assert not bad, f"paths that do not evaluate to their object: {bad}"


class Scenario:
    def __init__(
        self,
        root: Path,
        python: str = sys.executable,
        *,
        big_containers: bool = False,
        bulk_instances: bool = False,
    ) -> None:
        self.root = root
        self.python = python
        (root / "rs.py").write_text(CHILD_HELPERS)
        if big_containers:
            # The child also holds big containers unrelated to the reloads, so its scans take
            # the pruned first walk and must prove its paths (see test_shortest.py).
            (root / "sitecustomize.py").write_text(BIG_CONTAINERS)
        if bulk_instances:
            with open(root / "sitecustomize.py", "a") as fh:
                fh.write(BULK_INSTANCES)

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def run(
        self,
        script: str,
        *,
        timeout: float = 120,
        env: dict[str, str] | None = None,
        check: bool = True,
    ) -> Result:
        e = dict(os.environ)
        e["PYTHONPATH"] = os.pathsep.join([SRC, str(self.root)])
        e["PYTHONDONTWRITEBYTECODE"] = "1"
        e.pop("PYTHONBREAKPOINT", None)
        if env:
            e.update(env)
        proc = subprocess.run(
            [self.python, "-c", textwrap.dedent(script)],
            cwd=self.root,
            env=e,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"child failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        if MARK not in proc.stdout:
            if check:
                raise AssertionError(f"child printed no report:\n{proc.stdout}\n{proc.stderr}")
            return Result({"modules": []}, proc.stdout, proc.stderr)
        doc = json.loads(proc.stdout.rsplit(MARK, 1)[1].strip().splitlines()[0])
        # Every scan the child's report made is checked against the reference scan.
        alike = doc.get("_judged_alike")
        if alike is not None:
            assert alike == {"missed": [], "extra": [], "blind_spots": []}, (
                f"a scan judging every function one by one differs: {alike}"
            )
        return Result(doc, proc.stdout, proc.stderr)


def run_marked(python: str, argv: list[str], cwd: Path, marker: str = "@@") -> Any:
    """Run ``python argv`` in ``cwd`` (reloadscope's src importable, no .pyc written); it
    must succeed and print ``marker`` followed by one line of JSON, which is returned."""
    proc = subprocess.run(
        [python, *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=SRC, PYTHONDONTWRITEBYTECODE="1"),
    )
    assert proc.returncode == 0, proc.stderr
    assert marker in proc.stdout, (proc.stdout, proc.stderr)
    return json.loads(proc.stdout.split(marker, 1)[1].splitlines()[0])


def provided_pythons_dir() -> Path:
    """Where ``scripts/provide-pythons`` puts the CPythons Debian 12 lacks (3.14, 3.15)."""
    default = Path(os.path.expanduser("~/.cache/reloadscope/pythons"))
    return Path(os.environ.get("RELOADSCOPE_PYTHONS") or default)


@functools.cache
def python_versions() -> dict[str, str]:
    """``"3.X"`` -> interpreter, for every CPython 3.10+ found here, oldest first: the running one
    for its version, pyenv's, the ones ``scripts/provide-pythons`` provided, then
    ``python3.X`` on PATH.  None is required."""
    found = {f"{sys.version_info[0]}.{sys.version_info[1]}": sys.executable}
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    for versions in (Path(pyenv_root) / "versions", provided_pythons_dir()):
        if not versions.is_dir():
            continue
        for d in sorted(versions.iterdir()):
            parts = d.name.split(".")
            if len(parts) >= 2 and parts[0] == "3" and parts[1].isdigit() and int(parts[1]) >= 10:
                exe = d / "bin" / "python"
                key = f"3.{parts[1]}"
                if exe.exists() and key not in found:
                    found[key] = str(exe)
    for minor in range(10, 16):
        key = f"3.{minor}"
        if key not in found:
            exe = shutil.which(f"python{key}")
            if exe:
                found[key] = exe
    return {k: found[k] for k in sorted(found, key=lambda v: int(v.split(".")[1]))}


def pythons() -> list[str]:
    """The interpreters of ``python_versions()``, oldest first."""
    return list(python_versions().values())


def version_id(python: str) -> str:
    """The test id of one of ``pythons()``: its "3.X"."""
    for key, exe in python_versions().items():
        if exe == python:
            return key
    return python
