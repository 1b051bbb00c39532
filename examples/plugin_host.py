"""A plugin host that hot-reloads its plugin, the way many do, and keeps what the old code made.

    reloadscope run examples/plugin_host.py      # then, in another terminal:
    reloadscope report PID                        # what the reloads left behind, and who holds it
    reloadscope fix PID                           # the repair plan (changes nothing)
    reloadscope fix PID --apply                   # carry it out: the callbacks run the new code

It writes its plugin into a temporary directory, reloads it three times (each time with a new
version number) and registers the plugin's callbacks again after every reload, as a plugin host
without unregistering does. Then it waits; Ctrl-C ends it. On SIGUSR1 it prints what its
callbacks return now.
"""

import importlib
import os
import signal
import sys
import tempfile
import time

PLUGIN = """
def on_greet(name):
    return "hello " + name + " from version {n}"

class Formatter:
    def format(self, text):
        return "v{n}: " + text
"""

here = tempfile.mkdtemp(prefix="plugin-host-")
sys.path.insert(0, here)


def write_plugin(n: int) -> None:
    path = os.path.join(here, "plugins.py")
    with open(path, "w") as fh:
        fh.write(PLUGIN.format(n=n))
    os.utime(path, (time.time() + n, time.time() + n))  # a new mtime: no stale .pyc
    importlib.invalidate_caches()


write_plugin(0)
import plugins  # noqa: E402
from plugins import on_greet  # noqa: E402  (a copy: the reload never updates it)

SUBSCRIBERS = []  # every reload adds one more
HANDLERS = {}


def register() -> None:
    SUBSCRIBERS.append(plugins.Formatter().format)
    HANDLERS.setdefault("greet", []).append(plugins.on_greet)


register()
for n in range(1, 4):
    write_plugin(n)
    importlib.reload(plugins)
    register()


def show(*_: object) -> None:
    print("on_greet:", on_greet("you"))
    print("subscribers:", [f("x") for f in SUBSCRIBERS])
    print("handlers:", [h("you") for h in HANDLERS["greet"]], flush=True)


signal.signal(signal.SIGUSR1, show)
show()
print(f"plugin host {os.getpid()} ready: try 'reloadscope fix {os.getpid()}'", flush=True)
while True:
    time.sleep(1)
