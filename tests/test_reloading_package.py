"""The ``reloading`` package recompiles a decorated function, or a loop's body, from the file
on every call or iteration (file name ``""``) and runs it in the module's globals: no import,
no reload, ever.  Closures and lambdas an earlier body made stay alive and run old code: they
are found, late and recording, and what runs the current text is not (issue 21, item 4).
Every CPython whose test venv has the package."""

from __future__ import annotations

import subprocess

import pytest

from scenario import python_versions, run_marked
from targets import extras_python

APP = r"""
import json, sys
if sys.argv[1] == "recording":
    import reloadscope
    reloadscope.install(listen=False)
from reloading import reloading
KEEP = []

def edit():
    # The user's edit, made from inside: every v-one literal of this file becomes v-two.
    with open(__file__) as fh:
        text = fh.read()
    with open(__file__, "w") as fh:
        fh.write(text.replace('"v' + '1"', '"v' + '2"'))

@reloading
def make():
    return lambda: "v1"

KEEP.append(make())
for i in reloading(range(3)):
    KEEP.append(lambda: "v1")
    if i == 0:
        edit()
KEEP.append(make())
import reloadscope
doc = reloadscope.scan().to_json()
print("@@" + json.dumps({"ran": [f() for f in KEEP], "doc": doc}))
"""


def _pythons() -> list[str]:
    return [v for v in python_versions() if extras_python(v)]


@pytest.mark.parametrize("mode", ["late", "recording"])
@pytest.mark.parametrize("version", _pythons())
def test_what_an_earlier_body_made_is_found(tmp_path, version, mode):
    python = extras_python(version)
    assert python is not None
    has = subprocess.run([python, "-c", "import reloading"], capture_output=True)
    if has.returncode != 0:
        pytest.skip(f"{python} has no 'reloading' (.ci/run installs the test extras)")
    (tmp_path / "app.py").write_text(APP)
    got = run_marked(python, ["app.py", mode], tmp_path)
    # The decorator's first result and the loop's first lambda ran the v1 text; the rest v2.
    assert got["ran"] == ["v1", "v1", "v2", "v2", "v2"]
    stale = sorted(
        (e["qualname"], [p["text"] for p in e["paths"]])
        for m in got["doc"]["modules"]
        for e in m["stale"]
    )
    assert stale == [
        ("<lambda>", ["__main__.KEEP[1]"]),
        ("make.<locals>.<lambda>", ["__main__.KEEP[0]"]),
    ]
