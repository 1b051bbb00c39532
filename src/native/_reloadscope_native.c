/* The agent's optional native helper: the hot loops of a scan, in C, with results identical to
 * the pure-Python code they stand in for (reloadscope/agent/native.py loads it, by path, under
 * a private name; any failure leaves the Python code in charge).
 *
 * One abi3 build for CPython 3.10 and later (GIL builds only): the limited API.  Nothing here
 * calls Python code: the objects handled are walked with their type's tp_traverse (what
 * gc.get_referents does), compared by address, and appended to lists; the only attributes
 * read are a plain function's __code__ and __globals__ (C getters of exact function objects,
 * which the caller guarantees), or their two words in the object, where a probe at load found
 * them (``function_offsets``), and a class's namespace dict, from the word a probe found the
 * same way (``type_dict_offset``): the two places CPython's layout is relied on, never
 * guessed.  (A dict's keys pointer is read only to ask memory for it early: a hint.)  A dict
 * lookup of a str key can still run the __eq__ of another key of the same hash, as dict.get
 * would (modules_table's __file__, classes_to_judge's __module__).
 *
 *   expand(level, start, stop, seen, nxt, single, limit, skip, remaining, found, depth) -> int
 *       One chunk of a breadth-first walk (graph._Expander._take, see there).
 *   take(refs, start, stop, seen, nxt, single, remaining, found, depth) -> None
 *       The same for a slice of one big container's references (gc.get_referents').
 *   counts(part) -> list[int]     reference counts as expand reads them (its probe)
 *   holding(part, ids, skip) -> ([(offset, id), ...], references)
 *       Which objects of part hold which of some ids (a parent's search, graph._Parents).
 *   where(seq, start, stop, ids) -> [position, ...]
 *       Where some ids stand in a big list or tuple (paths._Positions).
 *   pick(objs, start, stop, types, outs, function_type, fields) -> None
 *       Objects of objs[start:stop] whose exact type is types[i], appended to outs[i]; for
 *       each plain function, the addresses of its __code__ and __globals__ and its position
 *       in objs, in fields.
 *   split(objs, fields, namespaces, known) -> (lib, new_lib, other)
 *   keep(objs, fields, lib, special) -> list
 *       The code-place index's passes over every function (evidence.Sources._index).
 *   index_all(lib_top, other_top, code_type), index_again(codes, seen, twice, ...)
 *       The code-place index made and grown, kept in tables (evidence.Sources._index).
 *   function_offsets(fn, size, set) -> (code_at, globals_at) | None
 *   modules_table(items, module_type, prefixes, told) -> (ids, current, by_ns, by_name, lib)
 *       The current modules' tables (stale.Classifier, evidence.Sources).
 *   type_dict_offset(cls, d, size, set), classes_to_judge(classes, library, recorded, found)
 *       A class's namespace read in place: the classes to judge one by one (stale.py).
 */
/* The functions' names and arguments, as agent/native.py expects them (``ABI`` there): a
 * helper of another reloadscope (an older install, another at the same path in a container)
 * is never used. Raise it with any change to them. */
#define RELOADSCOPE_NATIVE_ABI 3
#define FIELDS 3 /* words pick writes for each function: __code__, __globals__, position */

#define PY_SSIZE_T_CLEAN
#define Py_LIMITED_API 0x030A0000
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Lets the process's other threads run for a moment (the GIL released, a 20 us sleep: a bare
 * release is often taken back before a waiting thread wakes).  Only between steps whose
 * objects cannot change meanwhile (code objects and their constants are immutable, and held
 * by the caller's lists). */
#define YIELD_EVERY 16384

/* A pass over the heap's list waits on memory for each object it reads: asking for the one
 * PREFETCH_AHEAD places on early lets those waits overlap (a hint: no effect on results). */
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch((const void *)(p), 0, 1)
#else
#define PREFETCH(p) ((void)0)
#endif
#define PREFETCH_AHEAD 32
static void let_others_run(void) {
    Py_BEGIN_ALLOW_THREADS
    struct timespec ts = {0, 20000};
    nanosleep(&ts, NULL);
    Py_END_ALLOW_THREADS
}

/* -- a set of addresses (open addressing, linear probing) -------------------------------- */

typedef struct {
    uintptr_t *slots;
    size_t mask;
} ptrset;

static int ptrset_init(ptrset *s, Py_ssize_t n) {
    size_t cap = 16;
    while (cap < (size_t)n * 2 + 1) cap <<= 1;
    s->slots = (uintptr_t *)calloc(cap, sizeof(uintptr_t));
    s->mask = cap - 1;
    if (s->slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void ptrset_free(ptrset *s) {
    free(s->slots);
    s->slots = NULL;
}

static inline size_t ptr_hash(uintptr_t p) {
    p ^= p >> 17;
    p *= (uintptr_t)0x9E3779B97F4A7C15ULL;
    return (size_t)(p ^ (p >> 29));
}

static inline void ptrset_add(ptrset *s, uintptr_t p) {
    size_t i = ptr_hash(p) & s->mask;
    while (s->slots[i] != 0) {
        if (s->slots[i] == p) return;
        i = (i + 1) & s->mask;
    }
    s->slots[i] = p;
}

static inline int ptrset_has(const ptrset *s, uintptr_t p) {
    size_t i = ptr_hash(p) & s->mask;
    while (s->slots[i] != 0) {
        if (s->slots[i] == p) return 1;
        i = (i + 1) & s->mask;
    }
    return 0;
}

/* The addresses held by a set (or any iterable) of ints: ids. */
static int ptrset_from_ids(ptrset *s, PyObject *ids) {
    Py_ssize_t n = PyObject_Size(ids);
    if (n < 0) return -1;
    if (ptrset_init(s, n) < 0) return -1;
    PyObject *it = PyObject_GetIter(ids);
    if (it == NULL) goto fail;
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL) {
        void *p = PyLong_AsVoidPtr(item);
        Py_DECREF(item);
        if (p == NULL && PyErr_Occurred()) {
            Py_DECREF(it);
            goto fail;
        }
        if (p != NULL) ptrset_add(s, (uintptr_t)p);
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) goto fail;
    return 0;
fail:
    ptrset_free(s);
    return -1;
}

/* -- the referents of a chunk ------------------------------------------------------------- */

typedef struct {
    PyObject **items; /* each holds a reference, as gc.get_referents' list would */
    Py_ssize_t len, cap, limit;
    int over; /* more than limit: the caller takes its Python path */
} refbuf;

static int refbuf_visit(PyObject *obj, void *arg) {
    refbuf *b = (refbuf *)arg;
    if (b->over) return 0;
    if (b->len >= b->limit) {
        b->over = 1;
        return 0;
    }
    if (b->len == b->cap) {
        Py_ssize_t cap = b->cap ? b->cap * 2 : 1024;
        PyObject **items = (PyObject **)realloc(b->items, (size_t)cap * sizeof(PyObject *));
        if (items == NULL) return -1;
        b->items = items;
        b->cap = cap;
    }
    Py_INCREF(obj);
    b->items[b->len++] = obj;
    return 0;
}

static void refbuf_clear(refbuf *b) {
    for (Py_ssize_t i = 0; i < b->len; i++) Py_DECREF(b->items[i]);
    free(b->items);
    b->items = NULL;
    b->len = b->cap = 0;
}

/* What gc.get_referents(*part) returns, in the same order (objects neither collected nor
 * traversable are skipped, as there); ``skip`` is never traversed (3.12's _asyncio). */
static int collect_range(PyObject *part, Py_ssize_t start, Py_ssize_t stop, PyObject *skip,
                         refbuf *b) {
    Py_ssize_t n = PyList_Size(part);
    if (n < 0) return -1;
    if (start < 0) start = 0;
    if (stop > n) stop = n;
    for (Py_ssize_t i = start; i < stop && !b->over; i++) {
        PyObject *obj = PyList_GetItem(part, i);
        if (obj == skip) continue;
        PyTypeObject *tp = Py_TYPE(obj);
        if (!(PyType_GetFlags(tp) & Py_TPFLAGS_HAVE_GC)) continue;
        inquiry is_gc = (inquiry)PyType_GetSlot(tp, Py_tp_is_gc);
        if (is_gc != NULL && !is_gc(obj)) continue;
        traverseproc traverse = (traverseproc)PyType_GetSlot(tp, Py_tp_traverse);
        if (traverse == NULL) continue;
        if (traverse(obj, refbuf_visit, b) != 0) {
            if (!PyErr_Occurred()) PyErr_NoMemory();
            return -1;
        }
    }
    return 0;
}

static int collect(PyObject *part, PyObject *skip, refbuf *b) {
    return collect_range(part, 0, PY_SSIZE_T_MAX, skip, b);
}

static PyObject *native_counts(PyObject *self, PyObject *part) {
    refbuf b = {NULL, 0, 0, PY_SSIZE_T_MAX, 0};
    if (!PyList_Check(part)) {
        PyErr_SetString(PyExc_TypeError, "a list");
        return NULL;
    }
    if (collect(part, Py_None, &b) < 0) {
        refbuf_clear(&b);
        return NULL;
    }
    PyObject *out = PyList_New(0);
    for (Py_ssize_t i = 0; out != NULL && i < b.len; i++) {
        if (!PyObject_GC_IsTracked(b.items[i])) continue;
        PyObject *c = PyLong_FromSsize_t(Py_REFCNT(b.items[i]));
        if (c == NULL || PyList_Append(out, c) < 0) Py_CLEAR(out);
        Py_XDECREF(c);
    }
    refbuf_clear(&b);
    return out;
}

/* What a walk takes from ``n`` collected references ``items`` (each held once more by the
 * caller): appended to nxt, first those with a single holder (reference count ``single`` as
 * read here), in the order reached, then those with several, not in ``seen`` (ids), each
 * once, in the order first reached, added to ``seen``; a target among them (in
 * ``remaining``) is moved to ``found`` as id -> (depth, position in nxt). */
#define SEEN_CACHE 256

static int take(PyObject **items, Py_ssize_t n, PyObject *seen, PyObject *nxt, Py_ssize_t single,
                PyObject *remaining, PyObject *found, Py_ssize_t depth) {
    int status = -1;
    PyObject *shared = PyList_New(0);
    if (shared == NULL) return -1;
    /* Addresses this call knows to be in ``seen`` (nothing leaves it during a walk): an
     * object many others hold (a class, held by each of its instances) is looked up once. */
    uintptr_t in_seen[SEEN_CACHE];
    memset(in_seen, 0, sizeof in_seen);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *obj = items[i];
        if (!PyObject_GC_IsTracked(obj)) continue;
        if (Py_REFCNT(obj) == single) {
            if (PyList_Append(nxt, obj) < 0) goto done;
            continue;
        }
        size_t slot = ptr_hash((uintptr_t)obj) & (SEEN_CACHE - 1);
        if (in_seen[slot] == (uintptr_t)obj) continue;
        PyObject *key = PyLong_FromVoidPtr(obj);
        if (key == NULL) goto done;
        int known = PySet_Contains(seen, key);
        if (known == 0) known = PySet_Add(seen, key);
        else if (known == 1) known = 2;
        Py_DECREF(key);
        if (known < 0) goto done;
        in_seen[slot] = (uintptr_t)obj;
        if (known == 0 && PyList_Append(shared, obj) < 0) goto done;
    }
    Py_ssize_t base = PyList_Size(nxt), m = PyList_Size(shared);
    int want = PySet_Size(remaining) > 0;
    for (Py_ssize_t j = 0; j < m; j++) {
        PyObject *obj = PyList_GetItem(shared, j);
        if (PyList_Append(nxt, obj) < 0) goto done;
        if (!want) continue;
        PyObject *key = PyLong_FromVoidPtr(obj);
        if (key == NULL) goto done;
        int hit = PySet_Discard(remaining, key);
        if (hit == 1) {
            PyObject *where = Py_BuildValue("(nn)", depth, base + j);
            hit = where == NULL ? -1 : PyDict_SetItem(found, key, where);
            Py_XDECREF(where);
            want = PySet_Size(remaining) > 0;
        }
        Py_DECREF(key);
        if (hit < 0) goto done;
    }
    status = 0;
done:
    Py_DECREF(shared);
    return status;
}

/* expand(level, start, stop, seen, nxt, single, limit, skip, remaining, found, depth) -> int
 *
 * One chunk of a walk: what the objects of level[start:stop] hold, taken as ``take`` says.
 * Returns the number of references (collected, tracked or not), or -1 with nothing changed
 * when there are more than ``limit``. */
static PyObject *native_expand(PyObject *self, PyObject *args) {
    PyObject *part, *seen, *nxt, *skip, *remaining, *found;
    Py_ssize_t start, stop, single, limit, depth;
    if (!PyArg_ParseTuple(args, "O!nnO!O!nnOO!O!n", &PyList_Type, &part, &start, &stop,
                          &PySet_Type, &seen, &PyList_Type, &nxt, &single, &limit, &skip,
                          &PySet_Type, &remaining, &PyDict_Type, &found, &depth))
        return NULL;
    refbuf b = {NULL, 0, 0, limit, 0};
    PyObject *result = NULL;
    if (collect_range(part, start, stop, skip, &b) == 0) {
        if (b.over)
            result = PyLong_FromLong(-1);
        else if (take(b.items, b.len, seen, nxt, single, remaining, found, depth) == 0)
            result = PyLong_FromSsize_t(b.len);
    }
    refbuf_clear(&b);
    return result;
}

/* take(refs, start, stop, seen, nxt, single, remaining, found, depth) -> None
 *
 * ``take`` over refs[start:stop], a slice of what gc.get_referents returned (which holds
 * each once more, as expand's own collection does). */
static PyObject *native_take(PyObject *self, PyObject *args) {
    PyObject *refs, *seen, *nxt, *remaining, *found;
    Py_ssize_t start, stop, single, depth;
    if (!PyArg_ParseTuple(args, "O!nnO!O!nO!O!n", &PyList_Type, &refs, &start, &stop,
                          &PySet_Type, &seen, &PyList_Type, &nxt, &single, &PySet_Type,
                          &remaining, &PyDict_Type, &found, &depth))
        return NULL;
    Py_ssize_t n = PyList_Size(refs);
    if (start < 0) start = 0;
    if (stop > n) stop = n;
    if (stop <= start) Py_RETURN_NONE;
    /* A copy of the slice's pointers: appending to nxt never changes refs, but take reads
     * an array.  refs holds each object meanwhile. */
    PyObject **items = (PyObject **)malloc((size_t)(stop - start) * sizeof(PyObject *));
    if (items == NULL) return PyErr_NoMemory();
    for (Py_ssize_t i = start; i < stop; i++) items[i - start] = PyList_GetItem(refs, i);
    int status = take(items, stop - start, seen, nxt, single, remaining, found, depth);
    free(items);
    if (status < 0) return NULL;
    Py_RETURN_NONE;
}

/* -- a plain function's code and globals ---------------------------------------------------
 *
 * The index needs, for every function of the process, the addresses of its __code__ and
 * __globals__: no reference, and no need to touch the code object (a scan that reads tens of
 * thousands of them pays a cache miss each).  Read through the attributes, or, once
 * ``function_offsets`` has found where this interpreter's function objects keep them (a probe
 * on functions the agent makes, checked by the caller on several), straight from the object. */

static PyObject *str_code, *str_globals;
static Py_ssize_t fn_code_at = -1, fn_globals_at = -1; /* in pointers from the object's start */

static int fields_of(PyObject *fn, uintptr_t *code, uintptr_t *globals) {
    if (fn_code_at > 0 && fn_globals_at > 0) {
        *code = (uintptr_t)((PyObject **)fn)[fn_code_at];
        *globals = (uintptr_t)((PyObject **)fn)[fn_globals_at];
        return 0;
    }
    PyObject *c = PyObject_GetAttr(fn, str_code);
    if (c == NULL) return -1;
    PyObject *g = PyObject_GetAttr(fn, str_globals);
    if (g == NULL) {
        Py_DECREF(c);
        return -1;
    }
    *code = (uintptr_t)c; /* the function holds both */
    *globals = (uintptr_t)g;
    Py_DECREF(c);
    Py_DECREF(g);
    return 0;
}

/* function_offsets(fn, size, set) -> (code_at, globals_at) or None: the only places among the
 * first ``size`` bytes of ``fn`` that hold the addresses of fn.__code__ and fn.__globals__;
 * with ``set``, used from now on (None: forgotten, the attributes are read). */
static PyObject *native_function_offsets(PyObject *self, PyObject *args) {
    PyObject *fn;
    Py_ssize_t size;
    int set;
    if (!PyArg_ParseTuple(args, "Onp", &fn, &size, &set)) return NULL;
    PyObject *code = PyObject_GetAttr(fn, str_code);
    PyObject *g = code == NULL ? NULL : PyObject_GetAttr(fn, str_globals);
    Py_ssize_t c_at = -1, g_at = -1, c_n = 0, g_n = 0;
    if (g != NULL) {
        PyObject **slots = (PyObject **)fn;
        for (Py_ssize_t k = 2; k < size / (Py_ssize_t)sizeof(PyObject *); k++) {
            if (slots[k] == code) c_at = k, c_n++;
            if (slots[k] == g) g_at = k, g_n++;
        }
    }
    Py_XDECREF(code);
    Py_XDECREF(g);
    if (PyErr_Occurred()) return NULL;
    int found = c_n == 1 && g_n == 1;
    if (set) {
        fn_code_at = found ? c_at : -1;
        fn_globals_at = found ? g_at : -1;
    }
    if (!found) Py_RETURN_NONE;
    return Py_BuildValue("(nn)", c_at, g_at);
}

/* -- the current modules ------------------------------------------------------------------ */

static PyObject *str_file;

/* Is ``file`` (an exact str) under one of ``prefixes`` (a tuple of str)?  Told once per file
 * name in ``told`` (a dict of str -> bool, kept by the caller).  -1: an error. */
static int library_file(PyObject *file, PyObject *prefixes, PyObject *told) {
    PyObject *known = PyDict_GetItemWithError(told, file); /* borrowed; str keys only */
    if (known != NULL) return known == Py_True;
    if (PyErr_Occurred()) return -1;
    int under = 0;
    Py_ssize_t n = PyTuple_Size(prefixes);
    for (Py_ssize_t k = 0; k < n && !under; k++) {
        Py_ssize_t hit = PyUnicode_Tailmatch(file, PyTuple_GetItem(prefixes, k), 0,
                                             PY_SSIZE_T_MAX, -1);
        if (hit < 0) return -1;
        under = hit == 1;
    }
    if (PyDict_SetItem(told, file, under ? Py_True : Py_False) < 0) return -1;
    return under;
}

/* A dict's keys table, asked for from memory (``DICT_KEYS_AT``: where CPython 3.10-3.15 keep
 * its address in an exact dict; only a hint: a prefetch never faults nor changes a result). */
#define DICT_KEYS_AT 4
static inline void prefetch_keys(PyObject *d) {
    if (d != NULL && PyDict_CheckExact(d)) PREFETCH(((PyObject **)d)[DICT_KEYS_AT]);
}

/* items[j]'s value (a module of sys.modules), or NULL */
static inline PyObject *module_of(PyObject *items, Py_ssize_t j) {
    PyObject *item = PyList_GetItem(items, j);
    return item != NULL && PyTuple_Check(item) && PyTuple_Size(item) == 2
               ? PyTuple_GetItem(item, 1)
               : NULL;
}

static int add_id(PyObject *set, PyObject *obj) {
    PyObject *i = PyLong_FromVoidPtr(obj);
    int bad = i == NULL || PySet_Add(set, i) < 0;
    Py_XDECREF(i);
    return bad ? -1 : 0;
}

/* modules_table(items, module_type, prefixes, told)
 *     -> (in_sys_modules, current, by_ns, by_name, library)
 *
 * From ``items`` (list(dict.items(sys.modules))), in one pass: the ids of every value; the
 * modules (instances of ``module_type``) under a str key whose namespace is an exact dict,
 * by name; each such namespace by id -> (its first name, namespace), and by that name; the
 * ids of the namespaces whose ``__file__`` is no str or lies under one of ``prefixes``
 * (``told``: see library_file).  What stale.py's and evidence.py's Python makes; only str
 * keys are looked up (no other object's __hash__ or __eq__ runs, but for a __file__ lookup
 * in a namespace holding a key of another type with the same hash, as dict.get would). */
static PyObject *native_modules_table(PyObject *self, PyObject *args) {
    PyObject *items, *module_type, *prefixes, *told;
    if (!PyArg_ParseTuple(args, "O!O!O!O!", &PyList_Type, &items, &PyType_Type, &module_type,
                          &PyTuple_Type, &prefixes, &PyDict_Type, &told))
        return NULL;
    PyObject *in_sys = PySet_New(NULL), *current = PyDict_New(), *by_ns = PyDict_New();
    PyObject *by_name = PyDict_New(), *library = PySet_New(NULL), *result = NULL;
    if (!in_sys || !current || !by_ns || !by_name || !library) goto done;
    Py_ssize_t n = PyList_Size(items);
    for (Py_ssize_t j = 0; j < n; j++) {
        /* Each module, then its namespace, then the namespace's keys, asked for in turn ahead
         * of their use (each read waits on the one before: the waits then overlap). */
        PyObject *ahead = j + PREFETCH_AHEAD < n ? module_of(items, j + PREFETCH_AHEAD) : NULL;
        if (ahead != NULL) PREFETCH(ahead);
        ahead = j + PREFETCH_AHEAD / 2 < n ? module_of(items, j + PREFETCH_AHEAD / 2) : NULL;
        if (ahead != NULL && PyObject_TypeCheck(ahead, (PyTypeObject *)module_type))
            PREFETCH(PyModule_GetDict(ahead));
        ahead = j + PREFETCH_AHEAD / 4 < n ? module_of(items, j + PREFETCH_AHEAD / 4) : NULL;
        if (ahead != NULL && PyObject_TypeCheck(ahead, (PyTypeObject *)module_type))
            prefetch_keys(PyModule_GetDict(ahead));
        PyObject *item = PyList_GetItem(items, j);
        if (!PyTuple_Check(item) || PyTuple_Size(item) != 2) {
            PyErr_SetString(PyExc_TypeError, "items must be (key, value) pairs");
            goto done;
        }
        PyObject *key = PyTuple_GetItem(item, 0), *mod = PyTuple_GetItem(item, 1);
        if (add_id(in_sys, mod) < 0) goto done;
        if (!PyUnicode_CheckExact(key) || !PyObject_TypeCheck(mod, (PyTypeObject *)module_type))
            continue;
        PyObject *ns = PyModule_GetDict(mod); /* borrowed: what ModuleType.__dict__ reads */
        if (ns == NULL) {
            PyErr_Clear();
            continue;
        }
        if (!PyDict_CheckExact(ns)) continue;
        if (PyDict_SetItem(current, key, mod) < 0) goto done;
        PyObject *i = PyLong_FromVoidPtr(ns);
        if (i == NULL) goto done;
        int had = PyDict_Contains(by_ns, i);
        if (had == 0) {
            PyObject *pair = PyTuple_Pack(2, key, ns);
            int bad = pair == NULL || PyDict_SetItem(by_ns, i, pair) < 0 ||
                      PyDict_SetItem(by_name, key, ns) < 0;
            Py_XDECREF(pair);
            if (bad) had = -1;
        }
        if (had == 0) {
            PyObject *file = PyDict_GetItemWithError(ns, str_file); /* borrowed */
            int lib;
            if (file == NULL && PyErr_Occurred())
                lib = -1;
            else if (file == NULL || !PyUnicode_CheckExact(file))
                lib = 1;
            else
                lib = library_file(file, prefixes, told);
            if (lib < 0 || (lib == 1 && PySet_Add(library, i) < 0)) had = -1;
        }
        Py_DECREF(i);
        if (had < 0) goto done;
    }
    result = PyTuple_Pack(5, in_sys, current, by_ns, by_name, library);
done:
    Py_XDECREF(in_sys);
    Py_XDECREF(current);
    Py_XDECREF(by_ns);
    Py_XDECREF(by_name);
    Py_XDECREF(library);
    return result;
}

/* -- the modules of classes ---------------------------------------------------------------- */

static PyObject *str_module;
static Py_ssize_t type_dict_at = -1; /* a class's namespace dict, in pointers from its start */

/* type_dict_offset(cls, d, size, set) -> the only place among the first ``size`` bytes of the
 * class ``cls`` that holds the address of ``d`` (its namespace dict), or None; with ``set``,
 * used from now on (None: forgotten, and classes_to_judge answers None). */
static PyObject *native_type_dict_offset(PyObject *self, PyObject *args) {
    PyObject *cls, *d;
    Py_ssize_t size;
    int set;
    if (!PyArg_ParseTuple(args, "O!Onp", &PyType_Type, &cls, &d, &size, &set)) return NULL;
    Py_ssize_t at = -1, n = 0;
    PyObject **slots = (PyObject **)cls;
    for (Py_ssize_t k = 2; k < size / (Py_ssize_t)sizeof(PyObject *); k++)
        if (slots[k] == d) at = k, n++;
    if (set) type_dict_at = n == 1 ? at : -1;
    if (n != 1) Py_RETURN_NONE;
    return PyLong_FromSsize_t(at);
}

/* classes_to_judge(classes, library, recorded, found) -> bytes, or None (no dict offset is
 * known): for each class (in a list), 1 when its namespace is no exact dict, when its id is in
 * ``recorded`` (ids), when its ``__module__`` is a str not in ``library`` (a set of str), or
 * when its namespace holds a value whose id is in ``found``;
 * 2 when it has no namespace to read here (the caller reads it); else 0.  Only str keys are
 * looked up in ``library``: no other object's __hash__ or __eq__ runs. */
static PyObject *native_classes_to_judge(PyObject *self, PyObject *args) {
    PyObject *classes, *library, *recorded, *found;
    if (!PyArg_ParseTuple(args, "O!O!OO", &PyList_Type, &classes, &PySet_Type, &library,
                          &recorded, &found))
        return NULL;
    if (type_dict_at < 0) Py_RETURN_NONE;
    ptrset rec, stale;
    if (ptrset_from_ids(&rec, recorded) < 0) return NULL;
    if (ptrset_from_ids(&stale, found) < 0) {
        ptrset_free(&rec);
        return NULL;
    }
    Py_ssize_t n_stale = PyObject_Size(found);
    Py_ssize_t n = PyList_Size(classes);
    PyObject *out = PyBytes_FromStringAndSize(NULL, n);
    char *mask = out == NULL ? NULL : PyBytes_AsString(out);
    for (Py_ssize_t i = 0; mask != NULL && i < n; i++) {
        PyObject *cls = PyList_GetItem(classes, i);
        if (i + PREFETCH_AHEAD < n) PREFETCH(PyList_GetItem(classes, i + PREFETCH_AHEAD));
        if (i + PREFETCH_AHEAD / 2 < n) {
            PyObject *ahead = PyList_GetItem(classes, i + PREFETCH_AHEAD / 2);
            if (PyType_Check(ahead)) PREFETCH(((PyObject **)ahead)[type_dict_at]);
        }
        if (i + PREFETCH_AHEAD / 4 < n) {
            PyObject *ahead = PyList_GetItem(classes, i + PREFETCH_AHEAD / 4);
            if (PyType_Check(ahead)) prefetch_keys(((PyObject **)ahead)[type_dict_at]);
        }
        PyObject *d = PyType_Check(cls) ? ((PyObject **)cls)[type_dict_at] : NULL;
        char m;
        if (d == NULL)
            m = 2;
        else if (!PyDict_CheckExact(d) || ptrset_has(&rec, (uintptr_t)cls))
            m = 1;
        else {
            PyObject *v = PyDict_GetItemWithError(d, str_module); /* borrowed */
            if (v == NULL && PyErr_Occurred()) {
                Py_CLEAR(out);
                break;
            }
            if (v != NULL && PyUnicode_CheckExact(v)) {
                int in = PySet_Contains(library, v);
                if (in < 0) {
                    Py_CLEAR(out);
                    break;
                }
                m = (char)!in;
            } else {
                m = 0; /* no str name: among the libraries' (stale.py's _NOT_A_NAME) */
            }
            /* a dict holding a stale object (its values only, in place: no object is read) */
            Py_ssize_t at = 0;
            PyObject *key, *value;
            while (m == 0 && n_stale > 0 && PyDict_Next(d, &at, &key, &value))
                if (ptrset_has(&stale, (uintptr_t)value)) m = 1;
        }
        mask[i] = m;
    }
    ptrset_free(&rec);
    ptrset_free(&stale);
    return out;
}

/* holding(part, ids, skip) -> ([(offset, id), ...], references): for each object of ``part``
 * in order, the ids (in ``ids``, a set of ids) of what it holds, in the order
 * gc.get_referents(obj) lists them, each time it does (``skip`` is never traversed, as in
 * ``collect``); and how many references gc.get_referents(*part) would list. */
static PyObject *native_holding(PyObject *self, PyObject *args) {
    PyObject *part, *ids, *skip;
    if (!PyArg_ParseTuple(args, "O!OO", &PyList_Type, &part, &ids, &skip)) return NULL;
    ptrset want;
    if (ptrset_from_ids(&want, ids) < 0) return NULL;
    PyObject *out = PyList_New(0);
    Py_ssize_t n = PyList_Size(part);
    refbuf b = {NULL, 0, 0, PY_SSIZE_T_MAX, 0};
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
        PyObject *one = PyList_New(1);
        if (one == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyObject *obj = PyList_GetItem(part, i);
        Py_INCREF(obj);
        PyList_SetItem(one, 0, obj);
        int status = collect(one, skip, &b);
        Py_DECREF(one);
        total += b.len;
        for (Py_ssize_t j = 0; status == 0 && j < b.len; j++) {
            if (!ptrset_has(&want, (uintptr_t)b.items[j])) continue;
            PyObject *pair = Py_BuildValue("(nN)", i, PyLong_FromVoidPtr(b.items[j]));
            if (pair == NULL || PyList_Append(out, pair) < 0) status = -1;
            Py_XDECREF(pair);
        }
        for (Py_ssize_t j = 0; j < b.len; j++) Py_DECREF(b.items[j]);
        b.len = 0;
        if (status < 0) Py_CLEAR(out);
    }
    refbuf_clear(&b);
    ptrset_free(&want);
    if (out == NULL) return NULL;
    PyObject *result = Py_BuildValue("(Nn)", out, total);
    return result;
}

/* where(seq, start, stop, ids) -> the positions i in [start, stop) of the exact list or tuple
 * ``seq`` whose item's id is in ``ids`` (a set of ids), in order. */
static PyObject *native_where(PyObject *self, PyObject *args) {
    PyObject *seq, *ids;
    Py_ssize_t start, stop;
    if (!PyArg_ParseTuple(args, "OnnO", &seq, &start, &stop, &ids)) return NULL;
    int is_list = PyList_CheckExact(seq);
    if (!is_list && !PyTuple_CheckExact(seq)) {
        PyErr_SetString(PyExc_TypeError, "an exact list or tuple");
        return NULL;
    }
    Py_ssize_t n = is_list ? PyList_Size(seq) : PyTuple_Size(seq);
    if (start < 0) start = 0;
    if (stop > n) stop = n;
    ptrset want;
    if (ptrset_from_ids(&want, ids) < 0) return NULL;
    PyObject *out = PyList_New(0);
    for (Py_ssize_t i = start; out != NULL && i < stop; i++) {
        PyObject *item = is_list ? PyList_GetItem(seq, i) : PyTuple_GetItem(seq, i);
        if (!ptrset_has(&want, (uintptr_t)item)) continue;
        PyObject *pos = PyLong_FromSsize_t(i);
        if (pos == NULL || PyList_Append(out, pos) < 0) Py_CLEAR(out);
        Py_XDECREF(pos);
    }
    ptrset_free(&want);
    return out;
}

/* -- picking objects by exact type -------------------------------------------------------- */

/* pick(objs, start, stop, types, outs, function_type, fields): each object of
 * objs[start:stop] whose type is types[i] (by identity) is appended to outs[i] (unless that is
 * None), in order; for an object of ``function_type`` (exactly: a plain function), the
 * addresses of its __code__ and __globals__ and its position in ``objs`` are appended to
 * ``fields`` (a bytearray, three native words each), read now, while the object is at hand. */
static PyObject *native_pick(PyObject *self, PyObject *args) {
    PyObject *objs, *types, *outs, *fn_type, *fields;
    Py_ssize_t start, stop;
    if (!PyArg_ParseTuple(args, "O!nnO!O!OO!", &PyList_Type, &objs, &start, &stop,
                          &PyTuple_Type, &types, &PyTuple_Type, &outs, &fn_type,
                          &PyByteArray_Type, &fields))
        return NULL;
    Py_ssize_t nt = PyTuple_Size(types);
    if (PyTuple_Size(outs) != nt) {
        PyErr_SetString(PyExc_ValueError, "types and outs differ in length");
        return NULL;
    }
    /* type address -> index, open addressing over (address, index) pairs */
    size_t cap = 16;
    while (cap < (size_t)nt * 2 + 1) cap <<= 1;
    uintptr_t *keys = (uintptr_t *)calloc(cap, sizeof(uintptr_t));
    Py_ssize_t *vals = (Py_ssize_t *)calloc(cap, sizeof(Py_ssize_t));
    uintptr_t *found = NULL;
    Py_ssize_t n_found = 0, cap_found = 0;
    PyObject *result = NULL;
    if (keys == NULL || vals == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < nt; k++) {
        PyObject *out = PyTuple_GetItem(outs, k);
        if (out != Py_None && !PyList_Check(out)) {
            PyErr_SetString(PyExc_TypeError, "outs must be lists or None");
            goto done;
        }
        uintptr_t p = (uintptr_t)PyTuple_GetItem(types, k);
        size_t i = ptr_hash(p) & (cap - 1);
        while (keys[i] != 0 && keys[i] != p) i = (i + 1) & (cap - 1);
        if (keys[i] == 0) {
            keys[i] = p;
            vals[i] = k;
        }
    }
    Py_ssize_t n = PyList_Size(objs);
    if (start < 0) start = 0;
    if (stop > n) stop = n;
    for (Py_ssize_t j = start; j < stop; j++) {
        PyObject *obj = PyList_GetItem(objs, j);
        if (j + PREFETCH_AHEAD < stop) {
            /* (and 48 bytes on: a function keeps its code and globals within them) */
            char *ahead = (char *)PyList_GetItem(objs, j + PREFETCH_AHEAD);
            PREFETCH(ahead);
            PREFETCH(ahead + 48);
        }
        uintptr_t p = (uintptr_t)Py_TYPE(obj);
        size_t i = ptr_hash(p) & (cap - 1);
        while (keys[i] != 0 && keys[i] != p) i = (i + 1) & (cap - 1);
        if (keys[i] == 0) continue;
        PyObject *out = PyTuple_GetItem(outs, vals[i]);
        if (out != Py_None && PyList_Append(out, obj) < 0) goto done;
        if ((PyObject *)p != fn_type) continue;
        if (n_found + FIELDS > cap_found) {
            Py_ssize_t c = cap_found ? cap_found * 2 : 4096;
            uintptr_t *more = (uintptr_t *)realloc(found, (size_t)c * sizeof(uintptr_t));
            if (more == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            found = more;
            cap_found = c;
        }
        if (fields_of(obj, &found[n_found], &found[n_found + 1]) < 0) goto done;
        found[n_found + 2] = (uintptr_t)j;
        n_found += FIELDS;
    }
    if (n_found) {
        Py_ssize_t had = PyByteArray_Size(fields);
        size_t add = (size_t)n_found * sizeof(uintptr_t);
        if (PyByteArray_Resize(fields, had + (Py_ssize_t)add) < 0) goto done;
        memcpy(PyByteArray_AsString(fields) + had, found, add);
    }
    result = Py_None;
    Py_INCREF(result);
done:
    free(keys);
    free(vals);
    free(found);
    return result;
}

/* -- the code-place index's passes over every function ------------------------------------ */

static int is_table(PyObject *ba);
static inline int tbl_has(const uint64_t *w, uint64_t k);
static inline uint64_t tkey(uint64_t k);

/* The functions ``pick`` put in ``fields`` (how many: ``*n``), each at a position in ``objs``
 * (checked here). */
static int fields_view(PyObject *fields, PyObject *objs, Py_ssize_t *n, const uintptr_t **words) {
    const Py_ssize_t each = FIELDS * (Py_ssize_t)sizeof(uintptr_t);
    if (!PyByteArray_Check(fields) || PyByteArray_Size(fields) % each != 0) {
        PyErr_SetString(PyExc_ValueError, "not pick's fields");
        return -1;
    }
    *n = PyByteArray_Size(fields) / each;
    *words = (const uintptr_t *)PyByteArray_AsString(fields);
    Py_ssize_t len = PyList_Size(objs);
    for (Py_ssize_t i = 0; i < *n; i++) {
        if ((*words)[FIELDS * i + 2] >= (uintptr_t)len) {
            PyErr_SetString(PyExc_ValueError, "fields do not match the list");
            return -1;
        }
    }
    return 0;
}

/* split(objs, fields, namespaces, known) -> (lib, new_lib, other)
 *
 * For the plain functions whose __code__ and __globals__ addresses and positions in ``objs``
 * ``pick`` put in ``fields``: lib[i] (bytes) = 1 when the globals are one of ``namespaces``
 * (a set of ids); new_lib = the positions (in ``objs``) of those whose code's address
 * is not in ``known`` (index_all's table; None: no list is made); other = the positions of
 * the rest.  No object is read. */
static PyObject *native_split(PyObject *self, PyObject *args) {
    PyObject *objs, *fields, *namespaces, *known;
    if (!PyArg_ParseTuple(args, "O!OOO", &PyList_Type, &objs, &fields, &namespaces, &known))
        return NULL;
    Py_ssize_t n;
    const uintptr_t *words;
    if (fields_view(fields, objs, &n, &words) < 0) return NULL;
    const uint64_t *known_table = NULL; /* the kept index's own table (index_all) */
    if (known != Py_None) {
        if (!is_table(known)) {
            PyErr_SetString(PyExc_ValueError, "not the helper's table");
            return NULL;
        }
        known_table = (const uint64_t *)PyByteArray_AsString(known);
    }
    ptrset ns;
    if (ptrset_from_ids(&ns, namespaces) < 0) return NULL;
    PyObject *lib = PyBytes_FromStringAndSize(NULL, n);
    PyObject *new_lib = PyList_New(0), *other = PyList_New(0), *result = NULL;
    if (lib == NULL || new_lib == NULL || other == NULL) goto done;
    char *mask = PyBytes_AsString(lib);
    if (mask == NULL) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        const uintptr_t *f = &words[FIELDS * i];
        if (known_table != NULL && i + PREFETCH_AHEAD < n) {
            uint64_t k = tkey(words[FIELDS * (i + PREFETCH_AHEAD)]);
            PREFETCH(&known_table[2 + (ptr_hash((uintptr_t)k) & (size_t)known_table[1])]);
        }
        int in_lib = ptrset_has(&ns, f[1]);
        mask[i] = (char)in_lib;
        PyObject *into = NULL;
        if (!in_lib)
            into = other;
        else if (known_table != NULL && !tbl_has(known_table, f[0]))
            into = new_lib;
        if (into != NULL) {
            PyObject *pos = PyLong_FromSize_t((size_t)f[2]);
            int bad = pos == NULL || PyList_Append(into, pos) < 0;
            Py_XDECREF(pos);
            if (bad) goto done;
        }
    }
    result = PyTuple_Pack(3, lib, new_lib, other);
done:
    Py_XDECREF(lib);
    Py_XDECREF(new_lib);
    Py_XDECREF(other);
    ptrset_free(&ns);
    return result;
}

/* keep(objs, fields, lib, special) -> the functions ``pick`` put in ``fields`` (taken from
 * their positions in ``objs``) not of a library (lib[i] == 0) or whose code's id is in
 * ``special`` (a set of ids), in order. */
static PyObject *native_keep(PyObject *self, PyObject *args) {
    PyObject *objs, *fields, *lib, *special;
    if (!PyArg_ParseTuple(args, "O!OO!O", &PyList_Type, &objs, &fields, &PyBytes_Type, &lib,
                          &special))
        return NULL;
    Py_ssize_t n;
    const uintptr_t *words;
    if (fields_view(fields, objs, &n, &words) < 0) return NULL;
    if (PyBytes_Size(lib) != n) {
        PyErr_SetString(PyExc_ValueError, "lib does not match the functions");
        return NULL;
    }
    ptrset sp;
    if (ptrset_from_ids(&sp, special) < 0) return NULL;
    const char *mask = PyBytes_AsString(lib);
    PyObject *out = mask == NULL ? NULL : PyList_New(0);
    for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
        const uintptr_t *f = &words[FIELDS * i];
        if (mask[i] && !ptrset_has(&sp, f[0])) continue;
        if (PyList_Append(out, PyList_GetItem(objs, (Py_ssize_t)f[2])) < 0) Py_CLEAR(out);
    }
    ptrset_free(&sp);
    return out;
}

/* -- the code objects nested in code, and their places ------------------------------------ */

static PyObject *str_consts, *str_filename, *str_name, *str_firstlineno;

/* A table of 64-bit keys kept in a bytearray (so the index can outlive a call without any
 * object of the helper's own): word 0 the count, word 1 the mask, then the slots (0: empty;
 * a key 0 is stored as ZERO_KEY). */
#define ZERO_KEY 0x9E3779B97F4A7C15ULL

static inline uint64_t tkey(uint64_t k) { return k ? k : ZERO_KEY; }

static PyObject *tbl_new(Py_ssize_t n) {
    size_t cap = 1024;
    while (cap < (size_t)n * 2 + 1) cap <<= 1;
    PyObject *ba = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)((cap + 2) * 8));
    if (ba == NULL) return NULL;
    uint64_t *w = (uint64_t *)PyByteArray_AsString(ba);
    memset(w, 0, (cap + 2) * 8);
    w[1] = cap - 1;
    return ba;
}

static inline int tbl_has(const uint64_t *w, uint64_t k) {
    k = tkey(k);
    size_t m = (size_t)w[1], i = ptr_hash((uintptr_t)k) & m;
    while (w[2 + i] != 0) {
        if (w[2 + i] == k) return 1;
        i = (i + 1) & m;
    }
    return 0;
}

static inline void tbl_put(uint64_t *w, uint64_t k) {
    k = tkey(k);
    size_t m = (size_t)w[1], i = ptr_hash((uintptr_t)k) & m;
    while (w[2 + i] != 0) {
        if (w[2 + i] == k) return;
        i = (i + 1) & m;
    }
    w[2 + i] = k;
    w[0]++;
}

/* ``ba`` when it has room for ``more`` keys, else a bigger copy (a new reference either way) */
static PyObject *tbl_reserve(PyObject *ba, Py_ssize_t more) {
    const uint64_t *w = (const uint64_t *)PyByteArray_AsString(ba);
    if ((w[0] + (uint64_t)more) * 2 <= w[1]) {
        Py_INCREF(ba);
        return ba;
    }
    PyObject *bigger = tbl_new((Py_ssize_t)w[0] + more);
    if (bigger == NULL) return NULL;
    uint64_t *nw = (uint64_t *)PyByteArray_AsString(bigger);
    for (size_t i = 0; i <= (size_t)w[1]; i++)
        if (w[2 + i] != 0) tbl_put(nw, w[2 + i] == ZERO_KEY ? 0 : w[2 + i]);
    return bigger;
}

static int is_table(PyObject *ba) {
    if (!PyByteArray_Check(ba) || PyByteArray_Size(ba) < 16 + 8 * 1024) return 0;
    const uint64_t *w = (const uint64_t *)PyByteArray_AsString(ba);
    return (w[1] + 3) * 8 == (uint64_t)PyByteArray_Size(ba) && ((w[1] + 1) & w[1]) == 0;
}

/* code objects with the hash of their place, in the order found */
typedef struct {
    PyObject **code; /* borrowed: the caller's lists and the constants of codes hold them */
    Py_hash_t *hash;
    Py_ssize_t n, cap;
} codevec;

static void codevec_free(codevec *v) {
    free(v->code);
    free(v->hash);
    v->code = NULL;
    v->hash = NULL;
    v->n = v->cap = 0;
}

static int codevec_push(codevec *v, PyObject *c) {
    if (v->n == v->cap) {
        Py_ssize_t cap = v->cap ? v->cap * 2 : 4096;
        PyObject **code = (PyObject **)realloc(v->code, (size_t)cap * sizeof(PyObject *));
        if (code == NULL) return -1;
        v->code = code;
        Py_hash_t *hash = (Py_hash_t *)realloc(v->hash, (size_t)cap * sizeof(Py_hash_t));
        if (hash == NULL) return -1;
        v->hash = hash;
        v->cap = cap;
    }
    v->code[v->n++] = c;
    return 0;
}

static Py_hash_t place_hash(PyObject *c) {
    PyObject *f = PyObject_GetAttr(c, str_filename);
    PyObject *nm = f == NULL ? NULL : PyObject_GetAttr(c, str_name);
    PyObject *ln = nm == NULL ? NULL : PyObject_GetAttr(c, str_firstlineno);
    PyObject *t = ln == NULL ? NULL : PyTuple_Pack(3, f, nm, ln);
    Py_XDECREF(f);
    Py_XDECREF(nm);
    Py_XDECREF(ln);
    if (t == NULL) return -1;
    Py_hash_t h = PyObject_Hash(t);
    Py_DECREF(t);
    return h;
}

/* evidence._expand into ``out``: the distinct code objects of ``top`` (by identity) and those
 * nested in their constants, level by level, none whose address ``known`` (a table, or NULL)
 * holds, each with hash((co_filename, co_name, co_firstlineno)). */
static int expand_core(PyObject *top, const uint64_t *known, PyObject *code_type, codevec *out) {
    Py_ssize_t n_top = PyList_Size(top);
    ptrset seen;
    if (ptrset_init(&seen, n_top + 1024) < 0) return -1;
    Py_ssize_t seen_n = 0;
    int status = -1;
    for (Py_ssize_t i = 0; i < n_top; i++) {
        PyObject *c = PyList_GetItem(top, i);
        if (ptrset_has(&seen, (uintptr_t)c)) continue;
        ptrset_add(&seen, (uintptr_t)c);
        seen_n++;
        if (codevec_push(out, c) < 0) goto nomem;
    }
    Py_ssize_t start = 0, stop = out->n;
    while (start < stop) {
        for (Py_ssize_t i = start; i < stop; i++) {
            if (i % YIELD_EVERY == YIELD_EVERY - 1) let_others_run();
            PyObject *consts = PyObject_GetAttr(out->code[i], str_consts);
            if (consts == NULL) goto done;
            Py_ssize_t nc = PyTuple_Check(consts) ? PyTuple_Size(consts) : 0;
            for (Py_ssize_t j = 0; j < nc; j++) {
                PyObject *k = PyTuple_GetItem(consts, j);
                if ((PyObject *)Py_TYPE(k) != code_type || ptrset_has(&seen, (uintptr_t)k))
                    continue;
                if ((size_t)(seen_n + 1) * 2 > seen.mask) {
                    ptrset bigger;
                    if (ptrset_init(&bigger, seen_n * 2 + 1024) < 0) {
                        Py_DECREF(consts);
                        goto done;
                    }
                    for (size_t q = 0; q <= seen.mask; q++)
                        if (seen.slots[q]) ptrset_add(&bigger, seen.slots[q]);
                    ptrset_free(&seen);
                    seen = bigger;
                }
                ptrset_add(&seen, (uintptr_t)k);
                seen_n++;
                if (known != NULL && tbl_has(known, (uint64_t)(uintptr_t)k)) continue;
                /* a constant of a code in ``out`` (held by it, as it is by ``top``) */
                if (codevec_push(out, k) < 0) {
                    Py_DECREF(consts);
                    goto nomem;
                }
            }
            Py_DECREF(consts);
        }
        start = stop;
        stop = out->n;
    }
    for (Py_ssize_t i = 0; i < out->n; i++) {
        if (i % YIELD_EVERY == YIELD_EVERY - 1) let_others_run();
        out->hash[i] = place_hash(out->code[i]);
        if (out->hash[i] == -1 && PyErr_Occurred()) goto done;
    }
    status = 0;
    goto done;
nomem:
    PyErr_NoMemory();
done:
    ptrset_free(&seen);
    return status;
}

/* A count per hash (the places seen more than once). */
typedef struct {
    uint64_t *key;
    uint32_t *count;
    size_t mask;
} counter;

static int counter_init(counter *c, Py_ssize_t n) {
    size_t cap = 1024;
    while (cap < (size_t)n * 2 + 1) cap <<= 1;
    c->key = (uint64_t *)calloc(cap, sizeof(uint64_t));
    c->count = (uint32_t *)calloc(cap, sizeof(uint32_t));
    c->mask = cap - 1;
    if (c->key == NULL || c->count == NULL) {
        free(c->key);
        free(c->count);
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static size_t counter_slot(const counter *c, uint64_t k) {
    k = tkey(k);
    size_t i = ptr_hash((uintptr_t)k) & c->mask;
    while (c->key[i] != 0 && c->key[i] != k) i = (i + 1) & c->mask;
    return i;
}

static void counter_add(counter *c, uint64_t k) {
    size_t i = counter_slot(c, k);
    c->key[i] = tkey(k);
    c->count[i]++;
}

static uint32_t counter_get(const counter *c, uint64_t k) {
    size_t i = counter_slot(c, k);
    return c->key[i] == 0 ? 0 : c->count[i];
}

static void counter_free(counter *c) {
    free(c->key);
    free(c->count);
}

static int set_add_ssize(PyObject *set, Py_ssize_t v) {
    PyObject *o = PyLong_FromSsize_t(v);
    int r = o == NULL ? -1 : PySet_Add(set, o);
    Py_XDECREF(o);
    return r;
}

static int set_add_ptr(PyObject *set, void *p) {
    PyObject *o = PyLong_FromVoidPtr(p);
    int r = o == NULL ? -1 : PySet_Add(set, o);
    Py_XDECREF(o);
    return r;
}

/* index_all(lib_top, other_top, code_type)
 *     -> (codes, seen, twice, twice_ids, lib_twice_ids, n_codes)
 *
 * evidence.Sources._index_all with the kept part in tables (bytearrays): ``codes`` the
 * addresses of the library's code objects (``lib_top`` and what it nests), ``seen`` the
 * hashes of their places; ``twice`` (a set) the hashes of the places of all the code seen
 * more than once, ``twice_ids`` the ids of the code at those places, ``lib_twice_ids`` those
 * of the library's. */
static PyObject *native_index_all(PyObject *self, PyObject *args) {
    PyObject *lib_top, *other_top, *code_type;
    if (!PyArg_ParseTuple(args, "O!O!O", &PyList_Type, &lib_top, &PyList_Type, &other_top,
                          &code_type))
        return NULL;
    codevec lib = {NULL, NULL, 0, 0}, other = {NULL, NULL, 0, 0};
    counter cnt = {NULL, NULL, 0};
    PyObject *codes = NULL, *seen = NULL, *twice = NULL, *twice_ids = NULL, *lib_twice = NULL;
    PyObject *result = NULL;
    if (expand_core(lib_top, NULL, code_type, &lib) < 0) goto done;
    if (expand_core(other_top, NULL, code_type, &other) < 0) goto done;
    if (counter_init(&cnt, lib.n + other.n) < 0) goto done;
    for (Py_ssize_t i = 0; i < lib.n; i++) counter_add(&cnt, (uint64_t)lib.hash[i]);
    for (Py_ssize_t i = 0; i < other.n; i++) counter_add(&cnt, (uint64_t)other.hash[i]);
    codes = tbl_new(lib.n);
    seen = tbl_new(lib.n);
    twice = PySet_New(NULL);
    twice_ids = PySet_New(NULL);
    lib_twice = PySet_New(NULL);
    if (!codes || !seen || !twice || !twice_ids || !lib_twice) goto done;
    uint64_t *cw = (uint64_t *)PyByteArray_AsString(codes);
    uint64_t *sw = (uint64_t *)PyByteArray_AsString(seen);
    for (Py_ssize_t i = 0; i < lib.n; i++) {
        tbl_put(cw, (uint64_t)(uintptr_t)lib.code[i]);
        tbl_put(sw, (uint64_t)lib.hash[i]);
        if (counter_get(&cnt, (uint64_t)lib.hash[i]) > 1) {
            if (set_add_ssize(twice, lib.hash[i]) < 0 || set_add_ptr(twice_ids, lib.code[i]) < 0 ||
                set_add_ptr(lib_twice, lib.code[i]) < 0)
                goto done;
        }
    }
    for (Py_ssize_t i = 0; i < other.n; i++) {
        if (counter_get(&cnt, (uint64_t)other.hash[i]) > 1) {
            if (set_add_ssize(twice, other.hash[i]) < 0 ||
                set_add_ptr(twice_ids, other.code[i]) < 0)
                goto done;
        }
    }
    result = Py_BuildValue("(OOOOOn)", codes, seen, twice, twice_ids, lib_twice, lib.n + other.n);
done:
    Py_XDECREF(codes);
    Py_XDECREF(seen);
    Py_XDECREF(twice);
    Py_XDECREF(twice_ids);
    Py_XDECREF(lib_twice);
    codevec_free(&lib);
    codevec_free(&other);
    counter_free(&cnt);
    return result;
}

/* index_again(codes, seen, twice, lib_twice_ids, new_top, other_top, code_type)
 *     -> None | (codes, seen, now, twice_ids, n_codes)
 *
 * evidence.Sources._index_again over tables: the library code ``new_top`` brings (none whose
 * address ``codes`` holds) and the other code ``other_top``.  None when a place the tables saw
 * once is compiled again (the caller indexes everything again).  Else the tables grown (the
 * same bytearrays or bigger copies), ``twice`` and ``lib_twice_ids`` grown in place, ``now``
 * the places compiled more than once, and the ids of the code at those places. */
static PyObject *native_index_again(PyObject *self, PyObject *args) {
    PyObject *codes, *seen, *twice, *lib_twice, *new_top, *other_top, *code_type;
    if (!PyArg_ParseTuple(args, "OOO!O!O!O!O", &codes, &seen, &PySet_Type, &twice, &PySet_Type,
                          &lib_twice, &PyList_Type, &new_top, &PyList_Type, &other_top,
                          &code_type))
        return NULL;
    if (!is_table(codes) || !is_table(seen)) {
        PyErr_SetString(PyExc_ValueError, "not the helper's tables");
        return NULL;
    }
    codevec fresh = {NULL, NULL, 0, 0}, other = {NULL, NULL, 0, 0};
    counter cnt = {NULL, NULL, 0};
    PyObject *now = NULL, *twice_ids = NULL, *codes2 = NULL, *seen2 = NULL, *result = NULL;
    if (expand_core(new_top, (const uint64_t *)PyByteArray_AsString(codes), code_type, &fresh) <
        0)
        goto done;
    if (expand_core(other_top, NULL, code_type, &other) < 0) goto done;
    if (counter_init(&cnt, fresh.n + other.n) < 0) goto done;
    const uint64_t *sw0 = (const uint64_t *)PyByteArray_AsString(seen);
    for (int part = 0; part < 2; part++) {
        codevec *v = part ? &other : &fresh;
        for (Py_ssize_t i = 0; i < v->n; i++) {
            uint64_t h = (uint64_t)v->hash[i];
            if (tbl_has(sw0, h)) {
                PyObject *key = PyLong_FromSsize_t(v->hash[i]);
                int in_twice = key == NULL ? -1 : PySet_Contains(twice, key);
                Py_XDECREF(key);
                if (in_twice < 0) goto done;
                if (!in_twice) { /* a place seen once before: start over */
                    result = Py_None;
                    Py_INCREF(result);
                    goto done;
                }
            }
            counter_add(&cnt, h);
        }
    }
    now = PySet_New(twice);
    twice_ids = PySet_New(NULL);
    if (now == NULL || twice_ids == NULL) goto done;
    for (int part = 0; part < 2; part++) {
        codevec *v = part ? &other : &fresh;
        for (Py_ssize_t i = 0; i < v->n; i++)
            if (counter_get(&cnt, (uint64_t)v->hash[i]) > 1 && set_add_ssize(now, v->hash[i]) < 0)
                goto done;
    }
    codes2 = tbl_reserve(codes, fresh.n);
    seen2 = codes2 == NULL ? NULL : tbl_reserve(seen, fresh.n);
    if (seen2 == NULL) goto done;
    uint64_t *cw = (uint64_t *)PyByteArray_AsString(codes2);
    uint64_t *sw = (uint64_t *)PyByteArray_AsString(seen2);
    for (Py_ssize_t i = 0; i < fresh.n; i++) {
        tbl_put(cw, (uint64_t)(uintptr_t)fresh.code[i]);
        tbl_put(sw, (uint64_t)fresh.hash[i]);
        PyObject *key = PyLong_FromSsize_t(fresh.hash[i]);
        int at = key == NULL ? -1 : PySet_Contains(now, key);
        if (at == 1) at = PySet_Add(twice, key) < 0 ? -1 : 1;
        Py_XDECREF(key);
        if (at < 0 || (at == 1 && set_add_ptr(lib_twice, fresh.code[i]) < 0)) goto done;
    }
    for (Py_ssize_t i = 0; i < other.n; i++) {
        PyObject *key = PyLong_FromSsize_t(other.hash[i]);
        int at = key == NULL ? -1 : PySet_Contains(now, key);
        Py_XDECREF(key);
        if (at < 0 || (at == 1 && set_add_ptr(twice_ids, other.code[i]) < 0)) goto done;
    }
    {
        PyObject *it = PyObject_GetIter(lib_twice), *item;
        if (it == NULL) goto done;
        int bad = 0;
        while (!bad && (item = PyIter_Next(it)) != NULL) {
            bad = PySet_Add(twice_ids, item) < 0;
            Py_DECREF(item);
        }
        Py_DECREF(it);
        if (bad || PyErr_Occurred()) goto done;
    }
    result = Py_BuildValue("(OOOOn)", codes2, seen2, now, twice_ids, fresh.n + other.n);
done:
    Py_XDECREF(now);
    Py_XDECREF(twice_ids);
    Py_XDECREF(codes2);
    Py_XDECREF(seen2);
    codevec_free(&fresh);
    codevec_free(&other);
    counter_free(&cnt);
    return result;
}

/* table_len(table) -> how many keys it holds */
static PyObject *native_table_len(PyObject *self, PyObject *table) {
    if (!is_table(table)) {
        PyErr_SetString(PyExc_ValueError, "not the helper's table");
        return NULL;
    }
    return PyLong_FromUnsignedLongLong(((const uint64_t *)PyByteArray_AsString(table))[0]);
}

static PyMethodDef methods[] = {
    {"expand", native_expand, METH_VARARGS, "One chunk of a breadth-first walk."},
    {"take", native_take, METH_VARARGS, "A slice of a big container's references."},
    {"holding", native_holding, METH_VARARGS, "Which objects hold which of some ids."},
    {"where", native_where, METH_VARARGS, "Positions of some ids in a list or tuple."},
    {"counts", native_counts, METH_O, "Reference counts as expand reads them."},
    {"pick", native_pick, METH_VARARGS, "Objects by exact type."},
    {"function_offsets", native_function_offsets, METH_VARARGS, "Where functions keep fields."},
    {"split", native_split, METH_VARARGS, "The index's pass over every function."},
    {"index_all", native_index_all, METH_VARARGS, "The code-place index, made."},
    {"index_again", native_index_again, METH_VARARGS, "The code-place index, grown."},
    {"table_len", native_table_len, METH_O, "How many keys a table holds."},
    {"keep", native_keep, METH_VARARGS, "The functions to judge one by one."},
    {"type_dict_offset", native_type_dict_offset, METH_VARARGS, "Where classes keep their dict."},
    {"classes_to_judge", native_classes_to_judge, METH_VARARGS, "The classes to judge one by one."},
    {"modules_table", native_modules_table, METH_VARARGS, "The current modules' tables."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_reloadscope_native", NULL, 0, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__reloadscope_native(void) {
    str_code = PyUnicode_InternFromString("__code__");
    str_globals = PyUnicode_InternFromString("__globals__");
    str_module = PyUnicode_InternFromString("__module__");
    str_file = PyUnicode_InternFromString("__file__");
    if (str_module == NULL || str_file == NULL) return NULL;
    str_consts = PyUnicode_InternFromString("co_consts");
    str_filename = PyUnicode_InternFromString("co_filename");
    str_name = PyUnicode_InternFromString("co_name");
    str_firstlineno = PyUnicode_InternFromString("co_firstlineno");
    if (str_consts == NULL || str_filename == NULL || str_name == NULL || str_firstlineno == NULL)
        return NULL;
    if (str_code == NULL || str_globals == NULL) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "ABI", RELOADSCOPE_NATIVE_ABI) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
