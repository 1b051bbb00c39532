"""Drive a real IPython kernel (ipykernel) over jupyter_client, for the reloader tests.

``Kernel(root, python)`` starts ``python -m ipykernel_launcher`` (``python`` is any interpreter
that has ipykernel, by default this one; the client, jupyter_client, stays in this process) with
reloadscope's ``src`` and ``root`` on its PYTHONPATH and ``root`` as its working directory;
the kernel is named by a kernel spec written under ``root``, so no installed kernel spec (nor the
native one, which always runs this interpreter) is used.  ``run(code)``
executes one cell, waits until the kernel is idle again, and returns what the cell wrote to
stdout/stderr plus its ``execute_result`` (``result``: text/plain; ``data``: every mimetype).
A cell that raises fails the test with the kernel's traceback.  Always use it as a context
manager: the kernel is shut down on exit.
"""

from __future__ import annotations

import json
import os
import queue
import re
import sys
import time
from pathlib import Path
from typing import Any

from scenario import MARK, SRC, Result

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class CellError(AssertionError):
    pass


class Cell:
    def __init__(self) -> None:
        self.stdout = ""
        self.stderr = ""
        self.result: str | None = None
        self.data: dict[str, Any] = {}  # the execute_result's every representation
        self.error: dict[str, Any] | None = None
        self.status: str | None = None

    def json(self) -> Any:
        """The last line of stdout, parsed as JSON."""
        lines = [ln for ln in self.stdout.splitlines() if ln.strip()]
        assert lines, f"cell printed nothing (stderr: {self.stderr!r})"
        return json.loads(lines[-1])


class Kernel:
    KERNEL_NAME = "reloadscope-target"

    def __init__(
        self, root: Path, python: str = sys.executable, *, startup_timeout: float = 30
    ) -> None:
        self.root = Path(root)
        self.python = python
        self.startup_timeout = startup_timeout
        self.km: Any = None
        self.kc: Any = None

    def __enter__(self) -> Kernel:
        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpecManager

        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([SRC, str(self.root)])
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["IPYTHONDIR"] = str(self.root / ".ipython")  # no user profile, no startup files
        env["JUPYTER_RUNTIME_DIR"] = str(self.root / ".jupyter-runtime")
        env.pop("PYTHONBREAKPOINT", None)
        env.pop("PYTHONSTARTUP", None)
        # jupyter_client 8 has no kernel_cmd: the command line is the kernel spec's argv.
        kernels = self.root / ".kernels"
        spec_dir = kernels / self.KERNEL_NAME
        spec_dir.mkdir(parents=True, exist_ok=True)
        spec = {
            "argv": [self.python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": f"reloadscope target ({self.python})",
            "language": "python",
        }
        (spec_dir / "kernel.json").write_text(json.dumps(spec))
        self.km = KernelManager(
            kernel_name=self.KERNEL_NAME,
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]),
            transport="ipc",
            ip=str(self.root / ".kernel-ipc"),
        )
        try:
            self.km.start_kernel(cwd=str(self.root), env=env)
            self.kc = self.km.client()
            self.kc.start_channels()
            self.kc.wait_for_ready(timeout=self.startup_timeout)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.kc is not None:
                self.kc.stop_channels()
        finally:
            if self.km is not None and self.km.has_kernel:
                self.km.shutdown_kernel(now=True)

    def run(self, code: str, *, timeout: float = 20, check: bool = True) -> Cell:
        """Execute one cell; return once the kernel reported idle for it."""
        msg_id = self.kc.execute(code)
        cell = Cell()
        deadline = time.monotonic() + timeout
        idle = False
        while not idle:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"cell timed out after {timeout}s: {code!r}\n{cell.stdout}")
            try:
                msg = self.kc.get_iopub_msg(timeout=left)
            except queue.Empty:
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    cell.stdout += content["text"]
                else:
                    cell.stderr += content["text"]
            elif kind == "execute_result":
                cell.data = content["data"]
                cell.result = cell.data.get("text/plain")
            elif kind == "error":
                cell.error = content
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
        reply = self.kc.get_shell_msg(timeout=max(1.0, deadline - time.monotonic()))
        cell.status = reply["content"]["status"]
        if check and (cell.error is not None or cell.status != "ok"):
            tb = "\n".join(cell.error["traceback"]) if cell.error else ""
            raise CellError(f"cell failed: {code!r}\n{_ANSI.sub('', tb)}\n{cell.stderr}")
        return cell

    def report(self, **extra: Any) -> Result:
        """``rs.report()`` in the kernel (scan there, evaluate its module paths there)."""
        args = ", ".join(f"{k}={v}" for k, v in extra.items())
        cell = self.run(f"import rs; rs.report({args})", timeout=60)
        assert MARK in cell.stdout, (
            f"no report in the kernel's output:\n{cell.stdout}\n{cell.stderr}"
        )
        doc = json.loads(cell.stdout.rsplit(MARK, 1)[1].strip().splitlines()[0])
        return Result(doc, cell.stdout, cell.stderr)
