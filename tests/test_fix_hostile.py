"""The repair never runs a user-defined dunder (issue 23): a reloaded module whose classes, and
a host whose holders, define every hook that could run (``__eq__``, ``__hash__``,
``__setattr__``, ``__getattribute__``, ``__getattr__``, ``__repr__``, ``__class_getitem__``,
``__init_subclass__``, ``__set_name__``, descriptors' ``__get__``/``__set__``; on metaclasses
``__instancecheck__``, ``__subclasscheck__``, ``__mro_entries__``, ``mro``, ``__setattr__``,
``__call__``), dict subclasses, user-typed dict keys (one whose hash collides with the str key
beside it), a stale function used as a dict key.  Each hook records its call (and raises) from
the moment planning starts.  ``reloadscope.fix()`` then ``reloadscope.fix(dry_run=False)`` in
a real child interpreter, on every CPython: no hook ran, the holders it must refuse are in the
plan's ``cannot`` with why, and the safe holders beside them are fixed.

``__del__`` is the one hook that may run, by decision: the fix drops references to old
objects, and when it drops the last one Python frees the object then, with what only it held
(as a restart would).  So an old function's default whose class has a ``__del__`` is finalized
during the apply, never during the plan, and the result says how many old objects the fix
freed.  No ``__del__`` of a holder or of anything current runs.
"""

from __future__ import annotations

import pytest

from scenario import SRC, pythons, run_marked, version_id

SPY = r'''
ARMED = False
CALLS = []  # every user hook called while armed
DELS = []  # __del__ calls while armed

def note(what):
    if ARMED:
        CALLS.append(what)
        raise RuntimeError("user code ran during the fix: " + what)

def peek(what):
    if ARMED:
        CALLS.append(what)

def dying(what):
    if ARMED:
        DELS.append(what)

class HostMeta(type):
    def __eq__(cls, o): note("HostMeta.__eq__"); return type.__eq__(cls, o)
    def __hash__(cls): note("HostMeta.__hash__"); return type.__hash__(cls)
    def __repr__(cls): note("HostMeta.__repr__"); return "<HostMeta class>"
    def __setattr__(cls, n, v): note("HostMeta.__setattr__ " + n); type.__setattr__(cls, n, v)
    def __getattribute__(cls, n):
        peek("HostMeta.__getattribute__ " + n)
        return type.__getattribute__(cls, n)
    def __getattr__(cls, n): note("HostMeta.__getattr__ " + n); raise AttributeError(n)
    def __instancecheck__(cls, x): note("HostMeta.__instancecheck__"); return False
    def __subclasscheck__(cls, x): note("HostMeta.__subclasscheck__"); return False
    def mro(cls): note("HostMeta.mro"); return type.mro(cls)
    def __del__(cls): dying("HostMeta.__del__")

class Desc:
    """A data descriptor under the name a holder's __dict__ also has."""
    def __set_name__(self, owner, name): note("Desc.__set_name__")
    def __get__(self, obj, owner=None): note("Desc.__get__"); return self
    def __set__(self, obj, value): note("Desc.__set__")
    def __delete__(self, obj): note("Desc.__delete__")

class Key:
    """A user-typed dict key whose hash is the hash of "cb"."""
    def __hash__(self): note("Key.__hash__"); return hash("cb")
    def __eq__(self, o): note("Key.__eq__"); return self is o
    def __repr__(self): note("Key.__repr__"); return "Key()"

class SubDict(dict):
    def __setitem__(self, k, v): note("SubDict.__setitem__")
    def __getitem__(self, k): note("SubDict.__getitem__")
    def __contains__(self, k): note("SubDict.__contains__")
    def get(self, k, d=None): note("SubDict.get")
    def __eq__(self, o): note("SubDict.__eq__")
    def __hash__(self): note("SubDict.__hash__")
    def __repr__(self): note("SubDict.__repr__")
'''

HPLUG = r"""
import spy
from spy import note, peek, dying

class Meta(type):
    def __eq__(cls, o): note("Meta.__eq__"); return type.__eq__(cls, o)
    def __hash__(cls): note("Meta.__hash__"); return type.__hash__(cls)
    def __repr__(cls): note("Meta.__repr__"); return "<Meta class>"
    def __instancecheck__(cls, x): note("Meta.__instancecheck__"); return False
    def __subclasscheck__(cls, x): note("Meta.__subclasscheck__"); return False
    def __mro_entries__(cls, bases): note("Meta.__mro_entries__"); return (cls,)
    def mro(cls): note("Meta.mro"); return type.mro(cls)
    def __setattr__(cls, n, v): note("Meta.__setattr__ " + n); type.__setattr__(cls, n, v)
    def __getattribute__(cls, n):
        peek("Meta.__getattribute__ " + n)
        return type.__getattribute__(cls, n)
    def __getattr__(cls, n): note("Meta.__getattr__ " + n); raise AttributeError(n)
    def __call__(cls, *a, **k): note("Meta.__call__"); return type.__call__(cls, *a, **k)
    def __del__(cls): dying("Meta.__del__")

class Managed(metaclass=Meta):
    def run(self): return "v1"

class Guarded:
    def __init_subclass__(cls, **kw):
        note("Guarded.__init_subclass__")
        super().__init_subclass__(**kw)
    def __class_getitem__(cls, item): note("Guarded.__class_getitem__")
    def __eq__(self, o): note("Guarded.__eq__"); return self is o
    def __hash__(self): note("Guarded.__hash__"); return id(self)
    def __setattr__(self, n, v): note("Guarded.__setattr__ " + n); object.__setattr__(self, n, v)
    def __getattribute__(self, n):
        peek("Guarded.__getattribute__ " + n)
        return object.__getattribute__(self, n)
    def __getattr__(self, n): note("Guarded.__getattr__ " + n); raise AttributeError(n)
    def __repr__(self): note("Guarded.__repr__"); return "<Guarded>"
    def __del__(self): dying("Guarded.__del__")
    def run(self): return "v1"
    hidden = Managed  # a class attribute whose type has a hooking metaclass

class Plain:
    def run(self): return "v1"

class Token:
    def __del__(self): dying("Token.__del__")

def callback(): return "v1"

def on_close(_token=Token()): return "v1"
"""

MAIN = r"""
import gc, importlib, json, os, sys
sys.path.insert(0, os.getcwd())
sys.path.insert(0, sys.argv[1])
import reloadscope
reloadscope.install(listen=False)
import spy, hplug

cb = hplug.callback

# Safe holders: fixed.
safe_list = [cb]
safe_dict = {"cb": cb, 1: cb, ("t", 2): cb}
class PlainHolder: pass
ph = PlainHolder(); ph.cb = cb
class ClassHolder:
    cb = cb
class Looker:  # hooks that reading or writing its __dict__ never calls
    def __getattribute__(self, n):
        spy.peek("Looker.__getattribute__ " + n)
        return object.__getattribute__(self, n)
    def __getattr__(self, n): spy.note("Looker.__getattr__ " + n); raise AttributeError(n)
    def __eq__(self, o): spy.note("Looker.__eq__"); return self is o
    def __hash__(self): spy.note("Looker.__hash__"); return 1
    def __repr__(self): spy.note("Looker.__repr__"); return "Looker()"
    def __del__(self): spy.dying("Looker.__del__")
lk = Looker(); object.__setattr__(lk, "cb", cb)
class MetaInstance(metaclass=spy.HostMeta):  # the metaclass hooks the class, not its instances
    pass
mi = MetaInstance(); mi.cb = cb
closers = [hplug.on_close]  # the old on_close's only holder: freed by the fix
plain_obj = hplug.Plain()
guarded_obj = hplug.Guarded()
object.__setattr__(guarded_obj, "cb", cb)  # refused: Guarded overrides __setattr__
class PlainSub(hplug.Plain): pass
class GuardedSub(hplug.Guarded): pass

# Holders it must refuse.
class MetaHolder(metaclass=spy.HostMeta):
    cb = cb
class Setter:
    def __setattr__(self, n, v): spy.note("Setter.__setattr__ " + n); object.__setattr__(self, n, v)
setter = Setter(); object.__setattr__(setter, "cb", cb)
class DescHolder:
    cb = spy.Desc()
dh = DescHolder(); object.__getattribute__(dh, "__dict__")["cb"] = cb
user_keyed = {spy.Key(): cb}
colliding = {spy.Key(): "x", "cb": cb}
sub_dict = spy.SubDict(cb=cb)
as_key = {cb: "a stale function as a key"}
managed_obj = hplug.Managed()
class ManagedSub(hplug.Managed): pass
class Dunder:
    __class__ = hplug.Plain  # type.__setattr__ would run object's __class__ setter on the class

NAMES = ("callback", "Plain", "Guarded", "Managed")  # not on_close: closers holds it alone
OLD = tuple(getattr(hplug, n) for n in NAMES)  # a tuple: a holder the fix leaves alone

with open("hplug.py") as fh:
    src = fh.read()
with open("hplug.py", "w") as fh:
    fh.write(src.replace('"v1"', '"v2"'))
t = os.path.getmtime("hplug.py") + 5
os.utime("hplug.py", (t, t))
importlib.reload(hplug)
del cb
gc.collect()

# The agent's own result document, as reloadscope.fix gets it (its "freed" count).
from reloadscope.agent import repair
raw = []
_apply = repair.apply
repair.apply = lambda *a, **k: raw.append(_apply(*a, **k)) or raw[-1]

out = {}
for mode in ("plan", "apply"):
    spy.ARMED = True
    try:
        doc = reloadscope.fix(dry_run=mode == "plan").to_json()
        error = None
    except BaseException as e:
        doc, error = None, repr(e)
    spy.ARMED = False
    out[mode] = {"doc": doc, "error": error, "calls": list(spy.CALLS), "dels": list(spy.DELS)}
    del spy.CALLS[:], spy.DELS[:]

old = dict(zip(NAMES, OLD))
new = {n: getattr(hplug, n) for n in NAMES + ("on_close",)}
state = {
    "safe_list": safe_list[0] is new["callback"],
    "safe_dict": all(v is new["callback"] for v in safe_dict.values()),
    "ph": vars(ph)["cb"] is new["callback"],
    "ClassHolder": vars(ClassHolder)["cb"] is new["callback"],
    "lk": object.__getattribute__(lk, "__dict__")["cb"] is new["callback"],
    "mi": vars(mi)["cb"] is new["callback"],
    "closers": closers[0] is new["on_close"],
    "plain_obj": type(plain_obj) is new["Plain"],
    "guarded_obj": type(guarded_obj) is new["Guarded"],
    "PlainSub": PlainSub.__bases__ == (new["Plain"],),
    "GuardedSub": GuardedSub.__bases__ == (new["Guarded"],),
    # refused: still the old objects
    "guarded_obj.cb": object.__getattribute__(guarded_obj, "__dict__")["cb"] is old["callback"],
    "MetaHolder": type.__dict__["__dict__"].__get__(MetaHolder)["cb"] is old["callback"],
    "setter": vars(setter)["cb"] is old["callback"],
    "dh": object.__getattribute__(dh, "__dict__")["cb"] is old["callback"],
    "user_keyed": list(dict.values(user_keyed))[0] is old["callback"],
    "colliding": dict.__getitem__(colliding, "cb") is old["callback"],
    "sub_dict": dict.__getitem__(sub_dict, "cb") is old["callback"],
    "as_key": list(as_key)[0] is old["callback"],
    "managed_obj": type(managed_obj) is old["Managed"],
    "ManagedSub": ManagedSub.__bases__[0] is old["Managed"],
    "Dunder": type(Dunder) is type and vars(Dunder)["__class__"] is old["Plain"],
}
out["state"] = state
out["freed"] = raw[0]["freed"]
print("@@" + json.dumps(out))
"""

# Holders that must stay as they are, each with words its "cannot" entry must say.
REFUSED = {
    "guarded_obj.cb": "__setattr__",
    "MetaHolder.cb": "metaclass",
    "setter.cb": "__setattr__",
    "dh.cb": "descriptor",
    "user_keyed": "user-defined",
    "colliding": "user-defined",
    "sub_dict": "dict subclass",
    "as_key": "key",
    "instances of hplug.Managed": "metaclass",
    "ManagedSub.__bases__": "metaclass",
    "Dunder.__class__": "__class__",
}


@pytest.fixture(params=pythons(), ids=version_id)
def python(request: pytest.FixtureRequest) -> str:
    return request.param


def test_fix_runs_no_user_dunder_refuses_the_hooked_holders_and_fixes_the_rest(python, tmp_path):
    (tmp_path / "spy.py").write_text(SPY)
    (tmp_path / "hplug.py").write_text(HPLUG)
    (tmp_path / "main.py").write_text(MAIN)
    got = run_marked(python, ["main.py", SRC], tmp_path)
    plan, result = got["plan"], got["apply"]
    assert plan["error"] is None, plan["error"]
    assert result["error"] is None, result["error"]
    assert plan["calls"] == [], plan["calls"]
    assert result["calls"] == [], result["calls"]
    # __del__: never while planning; while applying, only the old on_close's default (its
    # class migrated to the current Token first), freed with the last reference to it.
    assert plan["dels"] == []
    assert result["dels"] == ["Token.__del__"], result["dels"]
    assert got["freed"] >= 1, got["freed"]

    cannot = plan["doc"]["not_fixable"]
    for where, word in REFUSED.items():
        hits = [c for c in cannot if where in c["path"]]
        assert hits, f"no 'cannot' entry for {where}: {[c['path'] for c in cannot]}"
        assert any(word in c["reason"] for c in hits), (where, word, hits)
    wheres = [c["path"] for c in plan["doc"]["changes"]]
    for refused in REFUSED:
        assert not any(refused in w for w in wheres), (refused, wheres)
    state = got["state"]
    assert all(state.values()), {k: v for k, v in state.items() if not v}
