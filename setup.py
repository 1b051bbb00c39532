"""The agent's optional native helper, ``reloadscope.agent._reloadscope_native``: one abi3
extension (the limited API of CPython 3.10, so one wheel serves 3.10 and every later CPython).
All the metadata is in pyproject.toml; this file only declares the extension.

The helper is never required: without a working compiler the build warns in one line and goes
on without it, and it is not built at all on an interpreter the limited API does not serve (a
free-threaded build, or not CPython) or when ``RELOADSCOPE_NO_NATIVE=1`` is set.  The package
is then pure Python and works the same.
"""

from __future__ import annotations

import os
import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, ExecError, PlatformError

NO_NATIVE = "RELOADSCOPE_NO_NATIVE"
NATIVE = "reloadscope.agent._reloadscope_native"
# A compiler that fails, is missing (OSError when it cannot be started), or a platform
# distutils cannot build for.
BUILD_ERRORS = (CCompilerError, ExecError, PlatformError, OSError)


def warn(text: str) -> None:
    print(f"WARNING: reloadscope: {text}", file=sys.stderr, flush=True)


def skip_reason() -> str | None:
    """Why the extension is not even tried here, or None."""
    if os.environ.get(NO_NATIVE, "").strip() not in ("", "0"):
        return f"{NO_NATIVE} is set"
    if sys.implementation.name != "cpython":
        return f"the limited API is CPython's, this is {sys.implementation.name}"
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        return "a free-threaded CPython has no stable ABI (abi3)"
    return None


class optional_build_ext(build_ext):
    """build_ext that gives up on the helper, with one warning line, instead of failing."""

    def run(self) -> None:
        try:
            super().run()
        except BUILD_ERRORS as exc:  # before any compile: setting the compiler up
            self._give_up(self.extensions, exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except BUILD_ERRORS as exc:
            self._give_up([ext], exc)

    def _give_up(self, exts: list[Extension], exc: BaseException) -> None:
        names = ", ".join(ext.name for ext in exts) or NATIVE
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        if len(reason) > 200:  # a failed command is named with all its arguments
            reason = reason[:197] + "..."
        warn(
            f"the optional native helper ({names}) was not built ({reason}); "
            "the package works the same without it"
        )
        # What is not built is no output, nor copied into src/ by an editable install (that
        # copy fails on a missing file).  A new list: the build may be iterating over the old.
        self.extensions = [ext for ext in self.extensions if ext not in exts]


skipped = skip_reason()
if skipped:
    warn(f"building without the optional native helper: {skipped}")
    ext_modules: list[Extension] = []
    options: dict[str, dict[str, str]] = {}
else:
    ext_modules = [
        Extension(
            NATIVE,
            sources=["src/native/_reloadscope_native.c"],
            define_macros=[("Py_LIMITED_API", "0x030A0000")],
            py_limited_api=True,
        )
    ]
    # Tagged cp310-abi3: setuptools refuses this option on a free-threaded build, so it is set
    # only with the extension.
    options = {"bdist_wheel": {"py_limited_api": "cp310"}}

setup(ext_modules=ext_modules, cmdclass={"build_ext": optional_build_ext}, options=options)
