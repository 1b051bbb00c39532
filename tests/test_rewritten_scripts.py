"""A script compiled from a rewritten syntax tree under its own file name (Streamlit's "magic",
any runner or import hook that rewrites the AST) is not an older execution of itself (issue
21, item 2): its running top-level code is never reported, at most named as not judged.  Every
CPython, late and recording."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from scenario import SRC, pythons, version_id

APP = r"""
import json, sys
import reloadscope
def helper():
    return 1
"a bare expression: the runner writes it out"
x = helper()
print("@@" + json.dumps(reloadscope.scan().to_json()))
"""

# What Streamlit does with its script, in miniature: parse, wrap every bare expression in a
# call, compile under the file's own absolute name, exec in a fresh __main__.
RUNNER = r"""
import ast, os, sys, types
if sys.argv[1] == "recording":
    import reloadscope
    reloadscope.install(listen=False)
path = os.path.abspath("app.py")
tree = ast.parse(open(path).read())
for i, node in enumerate(tree.body):
    if isinstance(node, ast.Expr):
        tree.body[i] = ast.Expr(ast.Call(ast.Name("print", ast.Load()), [node.value], []))
ast.fix_missing_locations(tree)
code = compile(tree, path, "exec")
mod = types.ModuleType("__main__")
mod.__file__ = path
sys.modules["__main__"] = mod
exec(code, mod.__dict__)
"""


@pytest.fixture(params=pythons(), ids=version_id)
def python(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.mark.parametrize("mode", ["late", "recording"])
def test_a_rewritten_script_is_not_stale_and_is_named_as_not_judged(python, tmp_path, mode):
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "runner.py").write_text(RUNNER)
    out = subprocess.run(
        [python, "runner.py", mode],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=SRC, PYTHONDONTWRITEBYTECODE="1"),
    )
    assert out.returncode == 0, out.stderr
    assert "a bare expression" in out.stdout  # the rewrite ran
    doc = json.loads(out.stdout.split("@@", 1)[1].splitlines()[0])
    assert [e for m in doc["modules"] for e in m["stale"]] == []
    spots = doc["scan"].get("blind_spots", [])
    if mode == "late":
        said = [s for s in spots if s.startswith("__main__: its top-level code running now is")]
        assert said, spots
