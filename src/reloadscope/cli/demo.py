"""``reloadscope demo``: reload a small real app in this process and report what stayed behind."""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import textwrap
import time

from .output import print_report

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

GREETER_V1 = '''
    """A plugin the app reloads while it runs."""

    def greet(name):
        return f"Hello, {name}"

    def shout(name):
        return greet(name).upper()

    class Greeter:
        def __init__(self, name):
            self.name = name

        def hello(self):
            return greet(self.name)
'''

GREETER_V2 = '''
    """Version 2: a friendlier greeting; shout() is gone."""

    def greet(name):
        return f"Hi there, {name}!"

    class Greeter:
        def __init__(self, name):
            self.name = name

        def hello(self):
            return greet(self.name)
'''

APP = '''
    """The app: copies, instances and callbacks made before the reload."""

    import demo_greeter
    from demo_greeter import greet

    visitor = demo_greeter.Greeter("Ada")
    on_login = [visitor.hello]
'''


def add_parser(sub: Any, summary: str) -> None:
    p = sub.add_parser(
        "demo",
        help=summary,
        description=(
            "Writes a tiny app to a temporary directory, imports it with recording on, edits "
            "and reloads its plugin for real, then prints the report: the old greet() that "
            "'from demo_greeter import greet' kept, the instance still using the old class, "
            "the bound method in a callback list, and the leftover name shout."
        ),
    )
    p.add_argument("--json", action="store_true", help="print the report document as JSON")


def _write(path: str, text: str, bump: float) -> None:
    with open(path, "w") as fh:
        fh.write(textwrap.dedent(text))
    t = time.time() + bump
    os.utime(path, (t, t))


def run(args: argparse.Namespace) -> int:
    import reloadscope

    workdir = tempfile.mkdtemp(prefix="reloadscope-demo-")
    greeter_path = os.path.join(workdir, "demo_greeter.py")
    _write(greeter_path, GREETER_V1, 0)
    _write(os.path.join(workdir, "demo_app.py"), APP, 0)
    sys.path.insert(0, workdir)
    dont_write = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        reloadscope.install(listen=False)
        greeter = importlib.import_module("demo_greeter")
        app = importlib.import_module("demo_app")
        _write(greeter_path, GREETER_V2, 10)
        importlib.invalidate_caches()
        importlib.reload(greeter)
        if not args.json:
            print(f"after the reload: demo_greeter.greet('Ada') -> {greeter.greet('Ada')!r}")
            print(f"but demo_app.greet('Ada')             -> {app.greet('Ada')!r}  (a stale copy)")
            print()
        report = reloadscope.scan()
        print_report(report, as_json=args.json)
    finally:
        reloadscope.uninstall()
        sys.dont_write_bytecode = dont_write
        sys.path.remove(workdir)
        for name in ("demo_app", "demo_greeter"):
            sys.modules.pop(name, None)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0
