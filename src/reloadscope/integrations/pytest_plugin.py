"""``pytest --reloadscope``: which test left stale objects alive, and what holds them.

Registered as the ``pytest11`` entry point ``reloadscope``, so installed reloadscope needs no
``-p``.  Inactive unless asked for: without ``--reloadscope``, ``--reloadscope-fail-on-stale``
or a collected test marked ``no_stale``, this module imports nothing of reloadscope's agent,
records nothing and scans nothing.

When active, recording starts (``reloadscope.install(listen=False)``) and one scan is taken
before the first test, as the baseline.  After each test the recorder's count of re-runs (a
reload, a re-import) is read; only when a module ran again during that test does a scan follow
(with ``gc.collect()`` first: an object only a garbage cycle holds is not a leak), and the
entries that were not stale before the test are that test's.  ``reloadscope.uninstall()`` runs
when the session ends.
"""

from __future__ import annotations

import time

import pytest

TYPE_CHECKING = False  # typing and reloadscope's model load only when the plugin is active
if TYPE_CHECKING:
    from collections.abc import Generator
    from typing import Any

    from ..agent.recorder import Recorder
    from ..model import Module, Report, StaleObject

MARKER = "no_stale"
SECTION = "reloadscope: stale objects left by tests"
_PLUGIN_NAME = "reloadscope-session"

# An entry's identity across scans: what the model says about it (its module, kind, qualified
# name, type and generation).  Instances of one old class share one entry: its count.
_Key = tuple[str, str, str, str, "int | None"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("reloadscope", "reloadscope: stale objects left by importlib.reload")
    group.addoption(
        "--reloadscope",
        action="store_true",
        default=False,
        help="Record module reloads during the session. After each test during which a module "
        "ran again (importlib.reload, a re-import), list the stale objects the test left "
        "alive (old functions, classes, instances and modules that something still holds), "
        "each with the path from the root that holds it, under the test's node id in a "
        "'reloadscope' section of the summary. The exit status is unchanged.",
    )
    group.addoption(
        "--reloadscope-fail-on-stale",
        action="store_true",
        default=False,
        help="As --reloadscope, and the session fails (exit status 1) when any test left "
        "stale objects; the summary names each such test. To fail single tests instead, "
        f"mark them @pytest.mark.{MARKER}.",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}: fail this test when it leaves stale objects (what an earlier execution of "
        "a reloaded module made and something still holds), with their paths in the failure; "
        "works with or without --reloadscope.",
    )
    if config.getoption("--reloadscope") or config.getoption("--reloadscope-fail-on-stale"):
        _activate(config, listing=True)  # recording starts with the session


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Without the options, recording starts here if a collected test carries the marker."""
    config = session.config
    if config.pluginmanager.has_plugin(_PLUGIN_NAME):
        return
    if any(item.get_closest_marker(MARKER) is not None for item in session.items):
        _activate(config, listing=False).start()


def _activate(config: pytest.Config, *, listing: bool) -> _Session:
    session = _Session(config, listing=listing)
    config.pluginmanager.register(session, _PLUGIN_NAME)
    config.pluginmanager.register(_NoStale(session), f"{_PLUGIN_NAME}-{MARKER}")
    return session


class _Found:
    """What one test left stale: entries of the scan after it, with how many are new."""

    __slots__ = ("entries", "rerun")

    def __init__(self, rerun: frozenset[str]) -> None:
        # (module, entry, how many of its objects are new, whether its module ran again, ids
        # of its objects that were stale before)
        self.entries: list[tuple[Module, StaleObject, int, bool, frozenset[int]]] = []
        self.rerun = rerun

    @property
    def count(self) -> int:
        return sum(e[2] for e in self.entries)


class _Session:
    """The active plugin: recording, a scan after each test that re-ran a module, the diff."""

    def __init__(self, config: pytest.Config, *, listing: bool) -> None:
        self.config = config
        self.listing = listing
        self.fail_on_stale = bool(config.getoption("--reloadscope-fail-on-stale"))
        self.started = False
        self.ours = False  # we installed the recorder (so we remove it again)
        self.recorder: Recorder | None = None
        self.seen_reloads = 0
        # The entries stale after the last scan: key -> (count, ids of the objects its
        # paths reach).  Only ids and the model's fields: nothing here keeps a target alive.
        self.known: dict[_Key, tuple[int, frozenset[int]]] = {}
        self.found: dict[str, _Found] = {}  # node id -> what that test left, in run order
        self.scans = 0
        self.scan_s = 0.0
        self.errors: list[str] = []

    # -- recording -----------------------------------------------------------------------------
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.start()

    def start(self) -> None:
        if self.started:
            return
        import reloadscope
        from reloadscope import agent

        self.started = True
        self.ours = agent.recorder() is None
        reloadscope.install(listen=False)
        self._read_counter()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, None, None]:
        if self.started and not (session.config.option.collectonly or session.testsfailed):
            baseline = self._scan()  # what was stale before any test ran
            if baseline is not None:
                self._diff(baseline)
        yield

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.started and self.ours:
            import reloadscope

            reloadscope.uninstall()
        self.started = False

    def _read_counter(self) -> bool:
        """Whether a module ran again since the last call (one attribute read)."""
        from reloadscope import agent

        rec = agent.recorder()
        n = rec.reloads if rec is not None else 0
        changed = rec is not self.recorder or n != self.seen_reloads
        self.recorder, self.seen_reloads = rec, n
        return changed

    def _scan(self) -> Report | None:
        """A scan after ``gc.collect()``; None (and a note for the summary) if it failed."""
        import reloadscope

        t = time.perf_counter()
        try:
            report = reloadscope.scan(collect=True)
        except Exception as e:  # a bug of ours must not end the user's session
            self.errors.append(f"a scan failed: {type(e).__name__}: {e}")
            return None
        finally:
            self.scans += 1
            self.scan_s += time.perf_counter() - t
        return report

    # -- after each test -----------------------------------------------------------------------
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, None, None]:
        started = time.time()
        yield
        if self.started and item.get_closest_marker(MARKER) is None:
            self._after(item, started)

    def _after(self, item: pytest.Item, started: float) -> _Found | None:
        if not self._read_counter():
            return None
        report = self._scan()
        if report is None:
            return None
        found = self._diff(report, self._rerun_since(started))
        if found.entries:
            self.found[item.nodeid] = found
            return found
        return None

    def _rerun_since(self, started: float) -> frozenset[str]:
        """The modules whose code ran again since ``started``."""
        rec = self.recorder
        if rec is None:
            return frozenset()
        preloaded = set(rec.preloaded)  # their first recorded "import" was a re-import
        with rec.lock:
            return frozenset(
                name
                for name, r in list(rec.records.items())
                if r.generations
                and r.generations[-1].started_at >= started
                and (len(r.generations) > 1 or name in preloaded)
            )

    def _diff(self, report: Report, rerun: frozenset[str] = frozenset()) -> _Found:
        """The entries of ``report`` that were not stale at the last scan; ``known`` becomes
        this scan's.  An entry is new when its key is, when its count grew (the growth is
        new), or when its one object is another object: its id changed (an id is an object's
        for the object's lifetime; the same key at the same address counts as the same)."""
        known: dict[_Key, tuple[int, frozenset[int]]] = {}
        for m in report.modules:
            for s in m.stale:
                key = _key(m, s)
                ids = frozenset(p.object_id for p in s.paths if p.object_id is not None)
                count, seen = known.get(key, (0, frozenset()))
                known[key] = (count + s.count, seen | ids)
        growth: dict[_Key, int] = {}
        for key, (count, ids) in known.items():
            before = self.known.get(key)
            if before is None:
                growth[key] = count
            elif count > before[0]:
                growth[key] = count - before[0]
            elif count == before[0] == 1 and ids and before[1] and not ids & before[1]:
                growth[key] = 1
        found = _Found(rerun)
        for m in report.modules:
            for s in m.stale:
                key = _key(m, s)
                new = min(s.count, growth.get(key, 0))
                if new > 0:
                    growth[key] -= new
                    stale_before = self.known.get(key, (0, frozenset()))[1]
                    found.entries.append((m, s, new, m.name in rerun, stale_before))
        self.known = known
        return found

    # -- the end -------------------------------------------------------------------------------
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.fail_on_stale and self.found and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.listing:
            return
        tr = terminalreporter
        tr.write_sep("=", SECTION)
        for nodeid, found in self.found.items():
            n = found.count
            tr.write_line(f"{_inert(nodeid)}: {n} stale object{'s' if n != 1 else ''}")
            for line in _lines(found):
                tr.write_line(line)
        tests = len(self.found)
        if tests:
            verdict = f"{tests} test{'s' if tests != 1 else ''} left stale objects"
            if self.fail_on_stale:
                verdict += "; the session fails (--reloadscope-fail-on-stale)"
        else:
            verdict = "no test left stale objects"
        for error in self.errors:
            tr.write_line(f"reloadscope: {_inert(error)}")
        after = max(0, self.scans - 1)  # the first was the baseline
        tr.write_line(
            f"{verdict} ({after} scan{'s' if after != 1 else ''} after tests during which a "
            f"module ran again, and one before the first test; {self.scan_s:.2f} s scanning "
            "in all)"
        )


class _NoStale:
    """``@pytest.mark.no_stale``: runs a marked test's protocol itself, so that what the scan
    after its teardown finds can fail the test's own call report before it is logged (as
    pytest-rerunfailures does)."""

    def __init__(self, session: _Session) -> None:
        self.session = session

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> bool | None:
        if not self.session.started or item.get_closest_marker(MARKER) is None:
            return None
        from _pytest.runner import runtestprotocol  # what pytest's own protocol hook runs

        ihook = item.ihook
        ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        started = time.time()
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        found = self.session._after(item, started)
        if found is not None:
            failure = _Failure(found)
            call = next((r for r in reports if r.when == "call"), None)
            if call is not None and call.passed:
                call.outcome = "failed"
                call.longrepr = failure  # type: ignore[assignment]
            elif call is not None and call.failed:
                call.sections.append(("reloadscope", failure.text))
        for report in reports:
            ihook.pytest_runtest_logreport(report=report)
        ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True


def _key(m: Module, s: StaleObject) -> _Key:
    return (m.name, s.kind, s.qualname, s.type, s.generation)


def _inert(text: str) -> str:
    from ..inert import inert

    return inert(text)


def _lines(found: _Found) -> list[str]:
    """Each entry a test left: kind, module.qualname, how many, and every path with the fix."""
    lines = []
    for m, s, new, rerun, before in found.entries:
        count = f" x{new}" if new > 1 else ""
        if new != s.count:
            count = f" {new} more, {s.count} now stale"
        gen = "an earlier execution" if s.generation is None else f"gen {s.generation}"
        lines.append(
            f"  {_inert(s.kind):<10} {_inert(m.name)}.{_inert(s.qualname)}{count}  "
            f"({gen}, {s.size} B)"
        )
        if not rerun:
            lines.append(
                "      (this test re-ran no module of it: made since the last scan by code "
                "already stale)"
            )
        for i, p in enumerate(s.paths):
            older = "  (one stale before this test)" if p.object_id in before else ""
            lines.append(f"      {'held by' if i == 0 else 'also   '} {_inert(p.text)}{older}")
            if i == 0 and p.hint:
                lines.append(f"      fix: {_inert(p.hint)}")
    return lines


class _Failure:
    """A marked test's failure: the text, and its first line for pytest's short summary
    (``reprcrash.message``, as an exception's failure has).  Reports that travel (xdist,
    junitxml) take ``str()`` of it."""

    def __init__(self, found: _Found) -> None:
        n = found.count
        head = (
            f"reloadscope: marked {MARKER}, this test left {n} stale object"
            f"{'s' if n != 1 else ''} (found after its teardown)"
        )
        self.reprcrash = _Crash(head)
        self.text = "\n".join([head + ":", *_lines(found)])

    def toterminal(self, tw: Any) -> None:
        for line in self.text.splitlines():
            tw.line(line)

    def __str__(self) -> str:
        return self.text


class _Crash:
    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message
