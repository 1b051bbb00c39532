"""``pytest --reloadscope``: which test left stale objects alive, and what holds them.

Registered as the ``pytest11`` entry point ``reloadscope``, so installed reloadscope needs no
``-p``.  Inactive unless asked for: without ``--reloadscope``, ``--reloadscope-fail-on-stale``
(or their ini options ``reloadscope = true``, ``reloadscope_fail_on_stale = true``) or a
collected test marked ``no_stale``, this module imports nothing of reloadscope's agent, records
nothing and scans nothing.

When active, recording starts (``reloadscope.install(listen=False)``) and one scan is taken
before the first test, as the baseline.  After each test the recorder's count of re-runs (a
reload, a re-import) is read; only when a module ran again during that test does a scan follow
(with ``gc.collect()`` first: an object only a garbage cycle holds is not a leak), and the
entries that were not stale before the test are that test's.  ``reloadscope.uninstall()`` runs
when the session ends.

Under pytest-xdist the controller runs no test: it records and scans nothing.  Each worker
records and scans after its own tests as above and hands what it found (node ids, counts, the
summary's lines: text only) to the controller in ``workeroutput``; the controller's summary
lists every worker's tests in collection order (the order a run without xdist lists them in)
and ``--reloadscope-fail-on-stale`` fails the session from there.  xdist is never imported: its
hooks are optional hooks here.
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
_WORKER_KEY = "reloadscope"  # this plugin's entry in an xdist worker's workeroutput
_INI = "reloadscope"
_INI_FAIL = "reloadscope_fail_on_stale"

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
    parser.addini(
        _INI, type="bool", default=False, help="As --reloadscope (true/false; default false)."
    )
    parser.addini(
        _INI_FAIL,
        type="bool",
        default=False,
        help="As --reloadscope-fail-on-stale (true/false; default false).",
    )


def _asked(config: pytest.Config) -> tuple[bool, bool]:
    """(listing, failing on stale): from the command line or the ini file."""
    fail = bool(config.getoption("--reloadscope-fail-on-stale") or config.getini(_INI_FAIL))
    return bool(fail or config.getoption("--reloadscope") or config.getini(_INI)), fail


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}: fail this test when it leaves stale objects (what an earlier execution of "
        "a reloaded module made and something still holds), with their paths in the failure; "
        "works with or without --reloadscope.",
    )
    if _asked(config)[0]:
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
        self.fail_on_stale = _asked(config)[1]
        # Under pytest-xdist: this process is a worker (it runs tests and hands its findings
        # to the controller) or the controller (it runs none: it only gathers the workers').
        self.worker = hasattr(config, "workerinput")
        self.controller = False  # known at pytest_sessionstart, once xdist's configure ran
        self.workers: dict[str, dict[str, Any] | None] = {}  # worker id -> what it sent
        self.order: dict[str, int] = {}  # node id -> its place in the workers' collection
        self.started = False
        self.ours = False  # we installed the recorder (so we remove it again)
        self.recorder: Recorder | None = None
        self.seen_reloads = 0
        # The entries stale after the last scan: key -> (count, ids of the objects its
        # paths reach).  Only ids and the model's fields: nothing here keeps a target alive.
        self.known: dict[_Key, tuple[int, frozenset[int]]] = {}
        self.found: dict[str, _Found] = {}  # node id -> what that test left, in run order
        self.scans = 0
        self.baselines = 0  # scans before the first test (0 or 1)
        self.scan_s = 0.0
        self.errors: list[str] = []

    # -- recording -----------------------------------------------------------------------------
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # xdist's controller registers its distributed session as "dsession" (configure).
        self.controller = not self.worker and self.config.pluginmanager.has_plugin("dsession")
        if not self.controller:
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
            self.baselines = 1
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

    # -- pytest-xdist (hooks of xdist's, optional: xdist need not be installed) ---------------
    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """The controller: the order the tests were collected in (every worker's is the same)."""
        if not self.order:
            self.order = {nodeid: i for i, nodeid in enumerate(ids)}

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object | None) -> None:
        """The controller: a worker ended; what it found is in its ``workeroutput``."""
        worker = str(getattr(node.gateway, "id", node))
        output = getattr(node, "workeroutput", None) or {}
        sent = output.get(_WORKER_KEY)
        if isinstance(sent, dict) or worker not in self.workers:
            self.workers[worker] = sent if isinstance(sent, dict) else None

    # -- the end -------------------------------------------------------------------------------
    def _results(self) -> list[tuple[str, str, int, list[str]]]:
        """(node id, its heading, how many stale objects, the summary's lines under it) for each
        test that left stale objects: this process's, or, in xdist's controller, every
        worker's in the order of the collection."""
        if not self.controller:
            return [(n, n, f.count, _lines(f)) for n, f in self.found.items()]
        results = []
        for worker, sent in sorted(self.workers.items()):
            for nodeid, count, lines in (sent or {}).get("found", []):
                results.append((str(nodeid), int(count), [str(line) for line in lines], worker))
        last = len(self.order)
        results.sort(key=lambda r: (self.order.get(r[0], last), r[0], r[3]))
        runs: dict[str, int] = {}
        for r in results:
            runs[r[0]] = runs.get(r[0], 0) + 1
        twice = {nodeid for nodeid, n in runs.items() if n > 1}  # --dist each: name the worker
        return [(n, f"{n} [{w}]" if n in twice else n, c, lines) for n, c, lines, w in results]

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.worker and self.started:
            output: dict[str, Any] = session.config.workeroutput  # type: ignore[attr-defined]
            output[_WORKER_KEY] = {
                "found": [[n, c, lines] for n, _, c, lines in self._results()],
                "scans": self.scans - self.baselines,
                "baselines": self.baselines,
                "scan_s": self.scan_s,
                "errors": list(self.errors),
            }
            return  # the controller's summary and exit status say it
        if self.fail_on_stale and self._results() and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.listing or self.worker:
            return
        tr = terminalreporter
        tr.write_sep("=", SECTION)
        results = self._results()
        for _, heading, n, lines in results:
            tr.write_line(f"{_inert(heading)}: {n} stale object{'s' if n != 1 else ''}")
            for line in lines:
                tr.write_line(line)
        tests = len({nodeid for nodeid, _, _, _ in results})
        if tests:
            verdict = f"{tests} test{'s' if tests != 1 else ''} left stale objects"
            if self.fail_on_stale:
                verdict += "; the session fails (--reloadscope-fail-on-stale)"
        else:
            verdict = "no test left stale objects"
        if not self.controller:
            errors, after, scan_s = self.errors, self.scans - self.baselines, self.scan_s
            before = "one before the first test"
        else:
            sent = [s for s in self.workers.values() if s is not None]
            errors = [str(e) for s in sent for e in s.get("errors", [])]
            errors += [
                f"worker {w} ended without sending what it found: the tests it ran are not "
                "in this list"
                for w, s in sorted(self.workers.items())
                if s is None
            ]
            after = sum(int(s.get("scans", 0)) for s in sent)
            scan_s = sum(float(s.get("scan_s", 0.0)) for s in sent)
            n = len(self.workers)
            before = f"one before the first test in each of {n} worker{'s' if n != 1 else ''}"
        for error in errors:
            tr.write_line(f"reloadscope: {_inert(error)}")
        tr.write_line(
            f"{verdict} ({after} scan{'s' if after != 1 else ''} after tests during which a "
            f"module ran again, and {before}; {scan_s:.2f} s scanning in all)"
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
