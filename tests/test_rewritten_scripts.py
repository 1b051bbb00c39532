"""A script compiled from a rewritten syntax tree under its own file name (Streamlit's "magic",
any runner or import hook that rewrites the AST) is not an older execution of itself (issue
21, item 2): its running top-level code is never reported, at most named as not judged.  Every
CPython, late and recording."""

from __future__ import annotations

import pytest

from scenario import pythons, run_marked, version_id

APP = r"""
import json, sys
import reloadscope
SEEN = []
class Shown:
    def __str__(self):
        SEEN.append(True)  # printed: the runner rewrote the bare expression below
        return "shown"
def helper():
    return 1
Shown()
x = helper()
print("@@" + json.dumps({"rewritten": bool(SEEN), "doc": reloadscope.scan().to_json()}))
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
    got = run_marked(python, ["runner.py", mode], tmp_path)
    assert got["rewritten"]
    doc = got["doc"]
    assert [e for m in doc["modules"] for e in m["stale"]] == []
    spots = doc["scan"].get("blind_spots", [])
    if mode == "late":
        said = [s for s in spots if s.startswith("__main__: its top-level code running now is")]
        assert said, spots
