"""Reloaders in the wild, for real: IPython 9 ``%autoreload 2`` in a real kernel (both its
deduperreload and its superreload path), jurigged, discord.py extensions, a threaded
``http.server`` reloaded under a running request, and the late-arrival cases, each on every
CPython found here (``scenario.python_versions()``) whose interpreter has what the case needs.
A case that needs packages runs its child (for IPython: the kernel; the client, jupyter_client,
stays in the pytest process) with ``targets.python_with(version, ...)``: the running interpreter
for its own version, else the venv ``.ci/run`` makes for that version, else it is skipped with
the reason.

No reloader is mocked: each test writes real module files, lets the real library reload them,
and scans the real process.  Where it makes sense a case runs twice: "recording"
(``reloadscope.install()`` before the modules are imported) and "late" (no install; the scan
comes after the reloads, so every finding must carry ``"generation": null``).

What SPEC requires here, in short: code patched in place to the current code is not stale;
whatever a reloader leaves running old code (a removed function kept in a list, an old dict's
lambda, an old module's objects, an old class a server keeps) is, wherever the agent arrived;
every stale entry carries ``evidence``; module paths evaluate to the object; nothing current
and nothing outside the reloaded modules is reported.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from scenario import SRC, Result, Scenario, python_versions, pythons, version_id
from targets import python_with

PYTHONS = pythons()
IDS = [version_id(p) for p in PYTHONS]
VERSIONS = list(python_versions())
MODES = ["recording", "late"]
INSTALL = {
    "recording": "import reloadscope; reloadscope.install(listen=False)",
    "late": "",
}


# helpers ---------------------------------------------------------------------------------------
def assert_ran_on(r: Result, version: str) -> None:
    """The scanned process ran on the target CPython (not on the one running pytest)."""
    running = r.doc["process"]["python"]
    assert running.startswith(version + "."), f"expected CPython {version}, the child ran {running}"


def assert_stale(entry: dict[str, Any], mode: str, generation: int | None = 0) -> None:
    """A finding as SPEC words it: evidence that says why, and the right generation."""
    ev = entry.get("evidence")
    assert isinstance(ev, dict), f"stale entry without evidence: {entry}"
    assert isinstance(ev.get("kind"), str) and ev["kind"], f"evidence without a kind: {entry}"
    assert isinstance(ev.get("text"), str) and ev["text"].strip(), f"evidence without text: {entry}"
    if mode == "late":
        assert entry["generation"] is None, f"late scan but a generation is claimed: {entry}"
        assert ev["kind"] != "recorded", f"nothing was recorded, yet evidence says so: {entry}"
    else:
        assert entry["generation"] == generation, entry


def reported_ids(r: Result) -> set[int]:
    return {p["object_id"] for s in r.all_stale() for p in s["paths"] if "object_id" in p}


def assert_not_reported(r: Result, current: dict[str, int]) -> None:
    """None of these objects (current code, current classes, their instances) is reported."""
    ids = reported_ids(r)
    wrong = sorted(name for name, i in current.items() if i in ids)
    assert not wrong, f"current objects reported stale: {wrong}\nall: {r.all_stale()}"


def assert_entry_is(r: Result, entry: dict[str, Any], obj_id: int) -> None:
    """Every module path of ``entry`` leads to the object with this id (and there is one)."""
    got = {p["object_id"] for p in entry["paths"] if "object_id" in p}
    assert got == {obj_id}, f"entry's paths lead to {got}, expected {obj_id}: {entry}"


def assert_only_modules(r: Result, *names: str) -> None:
    """Nothing outside the reloaded modules is stale (a plain library reports nothing)."""
    others = {
        m["name"]: [(s["kind"], s["qualname"]) for s in m["stale"]]
        for m in r.doc["modules"]
        if m["name"] not in names and m["stale"]
    }
    assert not others, f"stale objects reported outside {names}: {others}"


def qualnames(r: Result, module: str) -> list[tuple[str, str]]:
    return sorted((s["kind"], s["qualname"]) for s in r.stale(module))


# 1. IPython 9 %autoreload 2 in a real kernel ----------------------------------------------------
IPY_V1 = """\
import execlog
execlog.EXECS.append(__name__)

def f():
    return "f v1"

def old_helper():
    return "old_helper v1"

HANDLERS = {"a": lambda: "handler v1"}

class Widget:
    def render(self):
        return "render v1"
"""

# Bodies changed, old_helper removed, the dict's lambda changed, a function added:
# deduperreload patches this in place (every top-level statement it cannot patch is unchanged).
# It execs the new lambda and the added function in a COPY of the module's dict, compiled
# from ast.unparse() text under the filename "<string>": both are current all the same.
IPY_BODY_EDIT = """\
import execlog
execlog.EXECS.append(__name__)

def f():
    return "f v2"

HANDLERS = {"a": lambda: "handler v2"}

class Widget:
    def render(self):
        return "render v2"

def added():
    return "added v2"
"""

# The same edit plus a new top-level statement that is not a constant expression: deduperreload
# gives up (its "unfixable" statements differ) and IPython falls back to superreload, i.e.
# importlib.reload + patching the old functions' __code__ and the old classes' __dict__.
IPY_STRUCTURAL_EDIT = IPY_BODY_EDIT + "\nLOADED = len(execlog.EXECS)\n"

IPY_PROBE = """\
import json
PROBE = {
    "f": mod.f(),
    "same_f": mod.f is f_before,
    "f_before": f_before(),
    "f_before_code_current": f_before.__code__ is mod.f.__code__,
    "execs": len(execlog.EXECS),
    "has_old_helper": hasattr(mod, "old_helper"),
    "keep": keep[0](),
    "old_handler": old_handlers["a"](),
    "new_handler": mod.HANDLERS["a"](),
    "render": w.render(),
    "w_current": type(w) is mod.Widget,
    "f_code": [mod.f.__code__.co_filename, mod.f.__code__.co_firstlineno],
    "render_code": [mod.Widget.render.__code__.co_firstlineno,
                    mod.Widget.render.__code__.co_qualname],
    "lambda_code": [mod.HANDLERS["a"].__code__.co_filename,
                    mod.HANDLERS["a"].__globals__ is vars(mod)],
    "added": mod.added(),
    "added_code": [mod.added.__code__.co_filename, mod.added.__globals__ is vars(mod)],
}
CURRENT = {
    "mod.f": id(mod.f), "f_before": id(f_before), "mod.Widget": id(mod.Widget),
    "w": id(w), "Widget.render": id(mod.Widget.render), "new lambda": id(mod.HANDLERS["a"]),
    "mod.added": id(mod.added),
}
OLD = {"old_helper": id(keep[0]), "old lambda": id(old_handlers["a"])}
print(json.dumps(PROBE))
"""


def write_future(path: Path, text: str, bump: float = 10) -> None:
    """Rewrite a module file with an mtime clearly after the one autoreload remembered."""
    path.write_text(text)
    t = time.time() + bump
    os.utime(path, (t, t))


def run_autoreload(
    tmp_path: Path, version: str, mode: str, edit: str
) -> tuple[dict[str, Any], Result]:
    """Import mod in a real kernel of CPython ``version`` with %autoreload 2, edit it, run a cell,
    scan there."""
    pytest.importorskip("jupyter_client")  # the client, in this process
    python = python_with(
        version,
        "ipython>=9",
        "ipykernel",
        why=" (these tests drive IPython 9's %autoreload 2, whose deduperreload is new in 9; "
        "IPython 9 needs Python 3.11+)",
    )
    from kernel_driver import Kernel

    Scenario(tmp_path)  # writes rs.py (the scan-and-check helper) into tmp_path
    (tmp_path / "execlog.py").write_text("EXECS = []\n")
    (tmp_path / "mod.py").write_text(IPY_V1)
    with Kernel(tmp_path, python) as k:
        if INSTALL[mode]:
            k.run(INSTALL[mode])
        k.run("%load_ext autoreload\n%autoreload 2")
        k.run(
            "import mod, execlog\n"
            "keep = [mod.old_helper]\n"
            "f_before = mod.f\n"
            "old_handlers = mod.HANDLERS\n"
            "w = mod.Widget()\n"
        )
        # One more cell: autoreload's pre-run check stores mod's source for deduperreload
        # (it only learns a module's source at the check after its import).
        k.run("pass")
        write_future(tmp_path / "mod.py", edit)
        cell = k.run(IPY_PROBE)  # autoreload runs before this cell's code
        probe = cell.json()
        r = k.report(current="CURRENT", old="OLD")
    assert_ran_on(r, version)
    return probe, r


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("version", VERSIONS)
def test_ipython_deduperreload_patches_in_place(tmp_path, version, mode):
    probe, r = run_autoreload(tmp_path, version, mode, IPY_BODY_EDIT)
    # deduperreload it was: the module body never ran again, mod.f is the same object, patched.
    assert probe["execs"] == 1, probe
    assert probe["same_f"] is True, probe
    assert probe["f"] == "f v2" and probe["render"] == "render v2", probe
    assert probe["has_old_helper"] is False, probe
    # What it leaves running old code.
    assert probe["keep"] == "old_helper v1" and probe["old_handler"] == "handler v1", probe
    assert probe["new_handler"] == "handler v2" and probe["added"] == "added v2", probe

    helper = r.one("mod", kind="function", qualname="old_helper")
    assert "__main__.keep[0]" in r.texts(helper), helper
    assert_stale(helper, mode)
    assert_entry_is(r, helper, r.extra["old"]["old_helper"])
    lam = r.one("mod", kind="function", qualname="<lambda>")
    assert "__main__.old_handlers['a']" in r.texts(lam), lam
    assert_stale(lam, mode)
    assert_entry_is(r, lam, r.extra["old"]["old lambda"])
    # The patched functions run the current code: not stale; nor the class, nor its instance,
    # nor the new lambda and the added function (whose __globals__ are a copy of the module's
    # dict, their co_filename "<string>").
    assert_not_reported(r, r.extra["current"])
    assert qualnames(r, "mod") == [("function", "<lambda>"), ("function", "old_helper")]
    r.assert_paths_evaluate()
    assert_only_modules(r, "mod")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("version", VERSIONS)
def test_ipython_superreload_patches_old_functions(tmp_path, version, mode):
    probe, r = run_autoreload(tmp_path, version, mode, IPY_STRUCTURAL_EDIT)
    # superreload it was: the module body ran again, mod.f is a new object, and the old function
    # object got the new __code__.
    assert probe["execs"] == 2, probe
    assert probe["same_f"] is False, probe
    assert probe["f_before"] == "f v2" and probe["f_before_code_current"] is True, probe
    assert probe["w_current"] is True, probe  # instances were moved to the new class
    assert probe["has_old_helper"] is False, probe  # superreload cleared the namespace first
    assert probe["keep"] == "old_helper v1" and probe["old_handler"] == "handler v1", probe

    helper = r.one("mod", kind="function", qualname="old_helper")
    assert "__main__.keep[0]" in r.texts(helper), helper
    assert_stale(helper, mode)
    assert_entry_is(r, helper, r.extra["old"]["old_helper"])
    lam = r.one("mod", kind="function", qualname="<lambda>")
    assert "__main__.old_handlers['a']" in r.texts(lam), lam
    assert_stale(lam, mode)
    assert_entry_is(r, lam, r.extra["old"]["old lambda"])
    # f_before is the OLD function object, patched to the current code: not stale.
    assert_not_reported(r, r.extra["current"])
    assert qualnames(r, "mod") == [("function", "<lambda>"), ("function", "old_helper")]
    if mode == "recording":
        m = r.module("mod")
        assert m["current_generation"] == 1, m  # superreload goes through importlib.reload
        assert "old_helper" not in m["leftover_names"], m
    r.assert_paths_evaluate()
    assert_only_modules(r, "mod")


# 2. jurigged ------------------------------------------------------------------------------------
JUR_V1 = """\
def f():
    return "f v1"

def old_helper():
    return "old_helper v1"

HANDLERS = {"a": lambda: "handler v1"}

class Widget:
    def render(self):
        return "render v1"
"""

# old_helper removed (jurigged deletes it from the module), the HANDLERS line re-run (a new
# dict and lambda), render patched and shifted up three lines, a method added.
JUR_V2 = """\
def f():
    return "f v2"

HANDLERS = {"a": lambda: "handler v2"}

class Widget:
    def render(self):
        return "render v2"

    def extra(self):
        return "extra v2"
"""

JUR_SCRIPT = """
import os, time, rs
{install}
import jurigged
events = []
watcher = jurigged.watch(
    pattern=os.path.join(os.getcwd(), "jmod.py"), logger=lambda e: events.append(str(e))
)
import jmod
keep = [jmod.old_helper]
f_before = jmod.f
render_before = jmod.Widget.render
old_handlers = jmod.HANDLERS
w = jmod.Widget()
rs.write("jmod.py", {v2!r})

def done():
    return (
        jmod.f() == "f v2" and "old_helper" not in vars(jmod)
        and jmod.HANDLERS["a"]() == "handler v2" and hasattr(w, "extra")
    )

deadline = time.monotonic() + 10
while not done() and time.monotonic() < deadline:
    time.sleep(0.02)
watcher.stop()
watcher.join()
probe = dict(
    done=done(), events=events, same_f=jmod.f is f_before,
    same_render=jmod.Widget.render is render_before, keep=keep[0](),
    old_handler=old_handlers["a"](), w_current=type(w) is jmod.Widget,
    render_line=jmod.Widget.render.__code__.co_firstlineno,
)
current = {{
    "jmod.f": id(jmod.f), "jmod.Widget": id(jmod.Widget), "w": id(w),
    "Widget.render": id(jmod.Widget.render), "Widget.extra": id(jmod.Widget.extra),
    "new lambda": id(jmod.HANDLERS["a"]),
}}
old = {{"old_helper": id(keep[0]), "old lambda": id(old_handlers["a"])}}
rs.report(probe=probe, current=current, old=old)
"""


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("version", VERSIONS)
def test_jurigged_patches_in_place(tmp_path, version, mode):
    s = Scenario(tmp_path, python_with(version, "jurigged"))
    s.write("jmod.py", JUR_V1)
    r = s.run(JUR_SCRIPT.format(install=INSTALL[mode], v2=JUR_V2), timeout=60)
    assert_ran_on(r, version)
    probe = r.extra["probe"]
    assert probe["done"], f"jurigged did not apply the edit: {probe}"
    # In place: same function and class objects, new code (render's first line moved to 7).
    assert probe["same_f"] and probe["same_render"] and probe["w_current"], probe
    assert probe["render_line"] == 7, probe
    assert probe["keep"] == "old_helper v1" and probe["old_handler"] == "handler v1", probe

    helper = r.one("jmod", kind="function", qualname="old_helper")
    assert "__main__.keep[0]" in r.texts(helper), helper
    assert_stale(helper, mode)
    assert_entry_is(r, helper, r.extra["old"]["old_helper"])
    lam = r.one("jmod", kind="function", qualname="<lambda>")
    assert "__main__.old_handlers['a']" in r.texts(lam), lam
    assert_stale(lam, mode)
    assert_entry_is(r, lam, r.extra["old"]["old lambda"])
    assert_not_reported(r, r.extra["current"])
    # jurigged's codefind keeps the replaced code objects of patched functions in its caches;
    # they never run again, and the functions that carried them run the current code.
    code = [e for e in r.stale("jmod") if e["kind"] == "code"]
    assert not code, f"code objects of functions patched to the current code reported: {code}"
    assert qualnames(r, "jmod") == [("function", "<lambda>"), ("function", "old_helper")]
    r.assert_paths_evaluate()
    # jurigged, ovld, watchdog and blessed were not reloaded: nothing of theirs is stale.
    assert_only_modules(r, "jmod")


# 3. discord.py extensions -----------------------------------------------------------------------
EXT_V1 = """\
from discord.ext import commands

def helper():
    return "helper v1"

class Greeter(commands.Cog):
    def __init__(self, bot):
        self.bot = bot

    @commands.command()
    async def hello(self, ctx):
        await ctx.send(helper())

@commands.command()
async def ping(ctx):
    await ctx.send("pong v1")

async def setup(bot):
    await bot.add_cog(Greeter(bot))
    bot.add_command(ping)
"""

EXT_SCRIPT = """
import asyncio, hashlib, sys, rs
{install}
import discord
from discord.ext import commands

kept = []
sources = []

async def main():
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.none())
    await bot.load_extension("ext_mod")
    first = sys.modules["ext_mod"]
    kept.append(first.helper)
    global old_cog, old_ping
    old_cog = bot.get_cog("Greeter")
    old_ping = bot.get_command("ping")
    sources.append(open(first.__file__, "rb").read())
    rs.write("ext_mod.py", {v2!r})
    sources.append(open(first.__file__, "rb").read())
    await bot.reload_extension("ext_mod")
    return bot, first is not sys.modules["ext_mod"]

bot, replaced = asyncio.run(main())
new = sys.modules["ext_mod"]
probe = dict(
    replaced=replaced, helper=new.helper(), old_helper=kept[0](),
    cog_current=type(bot.get_cog("Greeter")) is new.Greeter,
    ping_current=bot.get_command("ping").callback is new.ping.callback,
    sha=[hashlib.sha256(s).hexdigest() for s in sources],
)
current = {{
    "helper": id(new.helper), "Greeter": id(new.Greeter), "cog": id(bot.get_cog("Greeter")),
    "ping": id(new.ping.callback), "hello": id(new.Greeter.hello.callback),
    "setup": id(new.setup), "module": id(new),
}}
old = {{
    "helper": id(kept[0]), "cog": id(old_cog), "Greeter": id(type(old_cog)),
    "ping": id(old_ping.callback),
}}
rs.report(probe=probe, current=current, old=old)
"""


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("version", VERSIONS)
def test_discord_reload_extension(tmp_path, version, mode):
    s = Scenario(tmp_path, python_with(version, "discord.py"))
    s.write("ext_mod.py", EXT_V1)
    r = s.run(EXT_SCRIPT.format(install=INSTALL[mode], v2=EXT_V1.replace("v1", "v2")), timeout=60)
    assert_ran_on(r, version)
    probe = r.extra["probe"]
    # discord.py made a new module object and ran the new code; the bot has the new objects.
    assert probe["replaced"] and probe["helper"] == "helper v2", probe
    assert probe["old_helper"] == "helper v1", probe
    assert probe["cog_current"] and probe["ping_current"], probe

    if mode == "recording":
        m = r.module("ext_mod")
        assert m["current_generation"] == 1, m
        gens = m["generations"]
        assert [g["number"] for g in gens] == [0, 1], gens
        assert [g["source_sha256"] for g in gens] == probe["sha"], gens
    old = r.extra["old"]
    helper = r.one("ext_mod", kind="function", qualname="helper")
    assert "__main__.kept[0]" in r.texts(helper), helper
    assert_stale(helper, mode)
    assert_entry_is(r, helper, old["helper"])
    cog = r.one("ext_mod", kind="instance", qualname="Greeter")
    assert "__main__.old_cog" in r.texts(cog), cog
    assert_stale(cog, mode)
    assert cog["count"] == 1, cog
    cls = r.one("ext_mod", kind="class", qualname="Greeter")
    assert "__main__.old_cog.__class__" in r.texts(cls), cls
    assert_stale(cls, mode)
    assert_entry_is(r, cls, old["Greeter"])
    ping = r.one("ext_mod", kind="function", qualname="ping")
    assert any(t.startswith("__main__.old_ping.") for t in r.texts(ping)), ping
    assert_stale(ping, mode)
    assert_entry_is(r, ping, old["ping"])
    assert_not_reported(r, r.extra["current"])
    r.assert_paths_evaluate()
    # discord.py, aiohttp & co. were not reloaded.
    assert_only_modules(r, "ext_mod")


# 4. a threaded http.server, reloaded under a running request ------------------------------------
# Standard library only: it runs on every CPython found, bare or not.
HANDLERS_V1 = """\
import http.server
import server_state

def render(path):
    return "v1 " + path

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/slow":
            server_state.ENTERED.set()
            server_state.GATE.wait(30)
        body = render(self.path).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass
"""

HANDLERS_V2 = HANDLERS_V1.replace('"v1 "', '"v2 "').replace(
    "self.send_response(200)", "self.send_response(200)\n        self.send_header('X-V', '2')"
)

SERVER = """\
import http.server, threading
import handlers
from handlers import render

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handlers.Handler)
srv.daemon_threads = True
thread = threading.Thread(target=srv.serve_forever, name="http-server", daemon=True)
thread.start()
"""

SERVER_STATE = """\
import threading
ENTERED = threading.Event()
GATE = threading.Event()
"""

HTTP_SCRIPT = """
import http.client, os, rs
{install}
import server, handlers, server_state
conn = http.client.HTTPConnection("127.0.0.1", server.srv.server_address[1], timeout=30)
conn.request("GET", "/slow")
assert server_state.ENTERED.wait(10), "the request never reached the handler"
old = dict(cls=id(handlers.Handler), render=id(handlers.render))
handlers = rs.edit(handlers, {v2!r})
probe = dict(
    server_holds_old=server.srv.RequestHandlerClass is not handlers.Handler,
    copy_is_old=server.render is not handlers.render, copy_says=server.render("/x"),
)
current = dict(
    cls=id(handlers.Handler), render=id(handlers.render), do_GET=id(handlers.Handler.do_GET)
)
try:
    import reloadscope
    snap = str(reloadscope.snapshot(os.path.join(os.getcwd(), "server.rsnap")))
    rs.report(probe=probe, old=old, current=current, snapshot=snap)
finally:
    server_state.GATE.set()
    conn.getresponse().read()
    server.srv.shutdown()
"""


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("python", PYTHONS, ids=IDS)
def test_http_server_reloaded_under_request(tmp_path, python, mode):
    s = Scenario(tmp_path, python)
    s.write("handlers.py", HANDLERS_V1)
    s.write("server.py", SERVER)
    s.write("server_state.py", SERVER_STATE)
    r = s.run(HTTP_SCRIPT.format(install=INSTALL[mode], v2=HANDLERS_V2), timeout=60)
    assert_ran_on(r, version_id(python))
    probe = r.extra["probe"]
    assert probe["server_holds_old"] and probe["copy_is_old"], probe
    assert probe["copy_says"] == "v1 /x", probe
    if mode == "recording":
        m = r.module("handlers")
        assert m["current_generation"] == 1, m  # rs.edit reloads with importlib.reload
    old = r.extra["old"]

    cls = r.one("handlers", kind="class", qualname="Handler")
    assert_stale(cls, mode)
    assert any(t.endswith(".RequestHandlerClass") for t in r.texts(cls)), cls
    assert "server.srv.RequestHandlerClass" in r.texts(cls), cls
    assert_entry_is(r, cls, old["cls"])
    render = r.one("handlers", kind="function", qualname="render")
    assert_stale(render, mode)
    assert "server.render" in r.texts(render), render
    assert_entry_is(r, render, old["render"])
    inst = r.one("handlers", kind="instance", qualname="Handler")
    assert_stale(inst, mode)
    assert inst["count"] == 1, inst
    threads = [p for p in inst["paths"] if p["root"] == "thread"]
    assert threads, f"the request thread's handler instance has no thread path: {inst}"
    assert any("do_GET()" in p["text"] and "local 'self'" in p["text"] for p in threads), inst
    # The request thread is still running the old do_GET.
    # (3.10 code objects carry no qualified name: there the frame is named by its function.)
    qualname = "do_GET" if r.doc["process"]["python"].startswith("3.10.") else "Handler.do_GET"
    code = r.one("handlers", kind="code", qualname=qualname)
    assert_stale(code, mode)
    assert any(p["root"] == "thread" and "handlers.py:" in p["text"] for p in code["paths"]), code
    assert_not_reported(r, r.extra["current"])
    r.assert_paths_evaluate()
    assert_only_modules(r, "handlers")
    # Not a clean bill of health, read by people either: the readable report of the snapshot
    # names what holds the old code, and --fail-on-stale fails.
    p = subprocess.run(
        [sys.executable, "-m", "reloadscope", "report", r.extra["snapshot"], "--fail-on-stale"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "server.srv.RequestHandlerClass" in p.stdout, p.stdout
    assert "server.render" in p.stdout, p.stdout


# 5. late arrival on every CPython ---------------------------------------------------------------
LM_V1 = """\
def f():
    return "f v1"

class WithMethods:
    def method(self):
        return "method v1"

class NoMethods:
    pass

class Base:
    def hook(self):
        return "hook v1"

def factory():
    secret = "closure v1"
    def inner():
        return secret
    return inner

def callback(event):
    return "callback v1 " + event

class Worker:
    def step(self):
        return "step v1"

def loop(stop, started):
    started.set()
    while not stop.is_set():
        stop.wait(0.01)
"""

# Same line count, so NoMethods compiles exactly as before: nothing but the module's namespace
# tells the old class from the new one.
LM_V2 = (
    LM_V1.replace("v1", "v2")
    .replace("stop.wait(0.01)", "stop.wait(0.02)")
    .replace('"callback v2 " + event', '"callback v2: " + event')
)

OTHER = """\
import threading
import lm
from lm import f

obj = lm.WithMethods()
no = lm.NoMethods()

class Sub(lm.Base):
    pass

REGISTRY = {"on_event": lm.callback}
closure = lm.factory()
stop = threading.Event()

def hold(box, stop, started):
    m = box.pop()
    started.set()
    while not stop.is_set():
        stop.wait(0.01)
"""

LATE_SCRIPT = """
import threading, rs
import lm, other
s1, s2 = threading.Event(), threading.Event()
box = [lm.Worker().step]
threads = [
    threading.Thread(target=lm.loop, args=(other.stop, s1), name="old-loop", daemon=True),
    threading.Thread(target=other.hold, args=(box, other.stop, s2), name="holder", daemon=True),
]
for t in threads:
    t.start()
assert s1.wait(10) and s2.wait(10)
del s1, s2, t, box
lm = rs.edit(lm, {v2!r})
other.new_obj = lm.WithMethods()
other.new_no = lm.NoMethods()
other.new_closure = lm.factory()
other.new_worker_step = lm.Worker().step
probe = dict(
    no_isinstance=isinstance(other.no, lm.NoMethods),
    obj_isinstance=isinstance(other.obj, lm.WithMethods),
    f=other.f(), closure=other.closure(), sub_base_old=other.Sub.__bases__[0] is not lm.Base,
)
current = {{
    "f": id(lm.f), "WithMethods": id(lm.WithMethods), "NoMethods": id(lm.NoMethods),
    "Base": id(lm.Base), "Worker": id(lm.Worker), "callback": id(lm.callback),
    "factory": id(lm.factory), "loop": id(lm.loop), "method": id(lm.WithMethods.method),
    "new_obj": id(other.new_obj), "new_no": id(other.new_no),
    "new_closure": id(other.new_closure), "new_worker": id(other.new_worker_step.__self__),
    "other.Sub": id(other.Sub), "other.hold": id(other.hold),
}}
try:
    rs.report(probe=probe, current=current)
finally:
    other.stop.set()
    for t in threads:
        t.join()
"""


@pytest.mark.parametrize("python", PYTHONS, ids=IDS)
def test_late_arrival_findings(tmp_path, python):
    s = Scenario(tmp_path, python)
    s.write("lm.py", LM_V1)
    s.write("other.py", OTHER)
    r = s.run(LATE_SCRIPT.format(v2=LM_V2), timeout=60)
    probe = r.extra["probe"]
    assert probe == {
        "no_isinstance": False,
        "obj_isinstance": False,
        "f": "f v1",
        "closure": "closure v1",
        "sub_base_old": True,
    }, probe

    def found(kind: str, qualname: str) -> dict[str, Any]:
        entry = r.one("lm", kind=kind, qualname=qualname)
        assert_stale(entry, "late")
        return entry

    assert "other.f" in r.texts(found("function", "f"))
    assert "other.obj.__class__" in r.texts(found("class", "WithMethods"))
    obj = found("instance", "WithMethods")
    assert "other.obj" in r.texts(obj) and obj["count"] == 1, obj
    assert "other.no.__class__" in r.texts(found("class", "NoMethods"))
    no = found("instance", "NoMethods")
    assert "other.no" in r.texts(no) and no["count"] == 1, no
    assert "other.Sub.__bases__[0]" in r.texts(found("class", "Base"))
    assert "other.REGISTRY['on_event']" in r.texts(found("function", "callback"))
    assert "other.closure" in r.texts(found("function", "factory.<locals>.inner"))
    # A bound method of an old instance, held only by a running frame's local.
    worker = found("instance", "Worker")
    assert any(
        p["root"] == "thread"
        and p["text"].startswith("thread 'holder' > hold() ")
        and p["text"].endswith("> local 'm'.__self__")
        for p in worker["paths"]
    ), worker
    step = found("function", "Worker.step")
    assert any(t.endswith("> local 'm'.__func__") for t in r.texts(step)), step
    found("class", "Worker")
    # A thread still running the old loop: its frame's code is old.
    code = found("code", "loop")
    assert any(
        p["root"] == "thread"
        and p["text"].startswith("thread 'old-loop' > loop() ")
        and "lm.py:" in p["text"]
        for p in code["paths"]
    ), code
    assert "__main__.threads[0]._target" in r.texts(found("function", "loop"))
    r.assert_paths_evaluate()
    # Negative: nothing current (new functions, new classes, their instances, the holders'
    # own current code) is reported, and nothing outside lm.
    assert_not_reported(r, r.extra["current"])
    assert_only_modules(r, "lm")
