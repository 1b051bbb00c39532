"""What a command waits for, on stderr: only on a terminal, and only once the wait is long.

``attach``, ``report PID`` and ``snapshot PID`` wait for an injection and for the target's scan.
When stderr is a terminal and the wait has lasted over a second, one line says what for
("reloadscope: scanning 1,034,567 objects in PID 123..."), rewritten in place as the steps
change and erased when the wait ends, before anything else is written.  Nothing at all when
stderr is not a terminal or the wait is short.  ``RELOADSCOPE_PROGRESS_AFTER_S`` sets the
threshold (seconds; the tests make it 0).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing is not imported at run time: starting must stay cheap
if TYPE_CHECKING:
    import threading
    from typing import TextIO

ENV_AFTER = "RELOADSCOPE_PROGRESS_AFTER_S"
AFTER_S = 1.0
_ERASE = "\r\x1b[K"  # back to the line's start, and erase it


def _erase(drawn: int) -> str:
    """What erases a line of ``drawn`` characters: a dumb terminal knows no escape codes."""
    if os.environ.get("TERM") == "dumb":
        return "\r" + " " * drawn + "\r"
    return _ERASE


def threshold() -> float:
    """Seconds of waiting before the line appears (``RELOADSCOPE_PROGRESS_AFTER_S``)."""
    try:
        value = float(os.environ.get(ENV_AFTER, AFTER_S))
    except ValueError:
        return AFTER_S
    return value if value >= 0 else AFTER_S


class Progress:
    """Call it with each step waited for (``"scanning PID 123"``); use it as a context manager
    around the wait, so that its line is erased when the wait ends, however it ends."""

    def __init__(self, stream: TextIO | None = None, *, after: float | None = None) -> None:
        self.stream = sys.stderr if stream is None else stream
        try:
            self.enabled = self.stream.isatty()
        except (AttributeError, ValueError, OSError):
            self.enabled = False
        self.after = threshold() if after is None else after
        self.message: str | None = None
        self.shown = False  # the line is on the terminal now
        self.drawn = 0  # its length
        self._done = False
        self._lock: threading.Lock | None = None
        self._timer: threading.Timer | None = None

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        import threading  # only on a terminal: a pipe costs nothing

        if self._lock is None:
            self._lock = threading.Lock()
        with self._lock:
            if self._done:
                return
            self.message = message
            if self.shown or self.after <= 0:
                self._draw()
            elif self._timer is None:
                # From the first step on: the line appears when the whole wait is long.
                self._timer = threading.Timer(self.after, self._due)
                self._timer.daemon = True
                self._timer.start()

    def _due(self) -> None:
        assert self._lock is not None
        with self._lock:
            if not self._done and self.message is not None:
                self._draw()

    def _draw(self) -> None:
        text = f"reloadscope: {self.message}..."
        try:
            width = os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, ValueError, OSError):
            width = 80
        if width > 1 and len(text) > width - 1:  # a wrapped line could not be erased
            text = text[: max(width - 4, 0)] + "..."
        try:
            self.stream.write(_erase(self.drawn) + text)
            self.stream.flush()
            self.shown = True
            self.drawn = len(text)
        except (OSError, ValueError):
            self._done = True

    def close(self) -> None:
        """End the wait: erase the line if it was shown; nothing is shown afterwards."""
        if self._lock is None:
            return
        with self._lock:
            self._done = True
            if self._timer is not None:
                self._timer.cancel()
            if self.shown:
                self.shown = False
                try:
                    self.stream.write(_erase(self.drawn))
                    self.stream.flush()
                except (OSError, ValueError):
                    pass

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
