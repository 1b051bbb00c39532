"""Starting an agent inside a process that has none (placeholder until injection lands)."""

from __future__ import annotations

from .client import AttachError


def inject(pid: int) -> None:
    raise AttachError(
        f"no reloadscope agent listens in process {pid}, and this version cannot inject one "
        "yet; start the program with 'reloadscope run' or call reloadscope.install() in it"
    )
