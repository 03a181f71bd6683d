"""The call path of jitted functions: from Python arguments to a backend's executable and back.

`jit.py` traces, caches and explains; this module holds what runs on every call,
kept lean (no tracing, no dict building per call) and backend-neutral:

- `Entry`: one compiled specialisation. It calls the backend's executable (the
  protocol in `funconv.backends`: `call(*buffers) -> tuple`, `output_aliases`) and
  rebuilds the output pytree with straight-line unflatteners.
- the fast-path keys: `spec` (the structure of dicts, lists and tuples of leaves) and
  `leaf_values` (per leaf (shape, dtype), NumPy arrays passed uncopied, Python
  scalars weakly typed, as `fc.asarray` would type them);
- donation: a donated buffer still referenced elsewhere is copied (`unshared`), and a
  donated Array is deleted after the call (`delete`);
- weak Python scalars widened where eager would (`weak_upgrades`).

Imports the core (array, tree, types, errors) and ops (the primitive records it reads).
"""

from __future__ import annotations

import contextlib
import sys

import numpy as np

from funconv.array import Array
from funconv.errors import DTypeError
from funconv.types import DEFAULT_COMPLEX, DEFAULT_FLOAT, DEFAULT_INT, bool_, canonical_dtype

def wrap_output(v) -> Array:
    """An Array owning the generated code's result `v`, made read-only.

    Array._from_value's job, inlined for the hot path: `setflags` is cheaper than
    assigning `flags.writeable`, and generated code returns ndarrays or NumPy scalars.
    """
    if type(v) is not np.ndarray:
        v = np.asarray(v)
    v.setflags(write=False)
    a = _new_array(Array)
    a._value = v
    a._node = None
    a._trace = None
    return a


_new_array = object.__new__


class Entry:
    """One compiled specialisation: the executable, and how to rebuild the outputs.

    `call(arrays)` takes the Arrays of the dynamic leaves and returns the outputs;
    `values_call(...)` makes the same for raw NumPy values (see `Jitted.__call__`).
    """

    __slots__ = ("aliases", "call", "call_values", "executable", "graph", "out_tree", "upgrade")

    def __init__(self, executable, graph, out_tree, upgrade=None):
        self.executable = executable
        # weak Python scalar leaves passed in a wider dtype than their default: {leaf: dtype}
        self.upgrade = upgrade or {}
        self.graph = graph
        self.out_tree = out_tree
        exe = executable  # (its `call` is read per call: a backend may swap it, see threads.py)
        if len(graph.outputs) != out_tree.num_leaves:
            raise AssertionError("jit: the graph's outputs do not match its output structure")
        # per output, the inputs it may share memory with (None: unknown, so any of them)
        self.aliases = getattr(executable, "output_aliases", None)
        # The common output structures get their own closure: no generic unflatten per call
        if out_tree.kind is None:
            def call_values(values):
                return wrap_output(exe.call(*values)[0])
        elif out_tree.kind is tuple and all(c.kind is None for c in out_tree.children):
            def call_values(values):
                return tuple([wrap_output(v) for v in exe.call(*values)])
        else:
            unflatten = unflattener(out_tree)

            def call_values(values):
                return unflatten([wrap_output(v) for v in exe.call(*values)])

        def call(arrays):
            return call_values([a._value for a in arrays])

        self.call = call
        self.call_values = call_values

    def values_call(self, numpy_leaves: frozenset, donated: tuple, weak: list = ()):
        """`call_values` for leaves as `leaf_values` gives them: NumPy arrays uncopied, and
        Python scalars as they are (`weak`: [(leaf, dtype)], made 0-d arrays of that dtype).

        The generated code never writes into a non-donated input, so those arrays are passed
        as they are. Two cases still need a copy: a donated leaf (the code may write into it:
        the caller's array must not change, so the call donates a private copy), and an output
        that may share memory with such a leaf (returned as is it would be made read-only
        under the caller, and a later write by the caller would change an immutable Array).
        """
        copy_in = [i for i in donated if i in numpy_leaves]
        if not numpy_leaves:
            copy_out = []
        elif self.aliases is None:
            copy_out = list(range(len(self.graph.outputs)))
        else:
            copy_out = [k for k, al in enumerate(self.aliases) if al & numpy_leaves]
        weak = list(weak)
        if not copy_in and not copy_out:
            if not weak:
                return self.call_values
            call_values = self.call_values

            def call_scalars(values):
                for i, dt in weak:
                    values[i] = np.array(values[i], dt)
                return call_values(values)

            return call_scalars
        exe = self.executable
        unflatten = unflattener(self.out_tree)

        def call_copying(values):
            for i, dt in weak:
                values[i] = np.array(values[i], dt)
            for i in copy_in:
                values[i] = values[i].copy()
            outs = list(exe.call(*values))
            for k in copy_out:
                outs[k] = np.array(outs[k], copy=True)
            return unflatten([wrap_output(v) for v in outs])

        return call_copying


def delete(leaves, donated) -> None:
    """Mark the donated Array leaves deleted: their buffers may now hold results (as JAX)."""
    for i in donated:
        if type(leaves[i]) is Array:
            leaves[i]._delete()


def deleting(call, donated):
    """`call(arrays)` that then deletes the donated ones (positional Arrays: leaf = position)."""
    def call_and_delete(arrays):
        out = call(unshared(arrays, donated))
        delete(arrays, donated)
        return out

    return call_and_delete


# --- is a donated buffer referenced elsewhere? ------------------------------------------------------
#
# Eager reshapes, transposes and slices return Arrays viewing their operand's buffer, a caller
# may hold `np.asarray(x)`, a compiled graph may hold x's buffer as a constant. Writing a result
# into a donated buffer would change all of those. Every such holder references the ndarray
# object (a view through its `.base`), so its reference count tells: more references than the
# donated Array's own, and the call donates a private copy instead. Where the interpreter has
# no reference counts, every donation is treated as shared (safe, and then saves nothing).

_getrefcount = getattr(sys, "getrefcount", None)


def _value_refs(a) -> int:
    return _getrefcount(a._value)


# references to an Array's value when nothing else holds it, measured the way `shared` does
_OWN_REFS = _value_refs(Array._from_value(np.zeros(1))) if _getrefcount is not None else None


def shared(a: Array, extra: int = 0) -> bool:
    """Does anything besides `a` (and `extra` references the caller knows of) hold a's buffer?"""
    return _OWN_REFS is None or _value_refs(a) > _OWN_REFS + extra


def unshared(arrays, donated):
    """`arrays` with each donated Array whose buffer is held elsewhere replaced by a private
    copy (which the call may then overwrite); the others as they are."""
    out = None
    for i in donated:
        a = arrays[i]
        if type(a) is Array and shared(a):
            if out is None:
                out = list(arrays)
            out[i] = Array._from_value(a._value.copy())
    return arrays if out is None else out


class NotFast(Exception):
    """A call whose arguments the fast path does not handle (the slow path does)."""


SCALARS = (float, int, bool, complex)


def tree_spec(x, leaves: list):
    """A hashable description of the structure of `x`, appending its leaves.

    Handles exactly dict, list, tuple and None (the containers of parameters and optimizer
    states) around Arrays, NumPy arrays and scalars, and Python scalars, ordering leaves as
    funconv.tree.flatten does (dict keys sorted); anything else raises NotFast.
    """
    t = type(x)
    if t is dict:
        keys = sorted(x)
        children = [x[k] for k in keys]
    elif t is tuple or t is list:
        children = x
    elif t is Array or t is np.ndarray or t in SCALARS or isinstance(x, np.generic):
        leaves.append(x)
        return 0
    elif x is None:
        return None
    else:
        raise NotFast
    subs = []
    for c in children:
        tc = type(c)
        if tc is Array or tc is np.ndarray:  # the common leaves, without a call per leaf
            leaves.append(c)
            subs.append(0)
        else:
            subs.append(tree_spec(c, leaves))
    return (dict, tuple(keys), tuple(subs)) if t is dict else (t, tuple(subs))


def unflattener(treedef):
    """`f(values) -> structure` for `treedef`: straight-line for nests of dicts, lists and
    tuples (the usual outputs: new parameters, (params, state, loss)), else funconv.tree's."""
    build = _builder(treedef, 0)
    if build is None:
        return treedef.unflatten
    return build


def _builder(t, start: int):
    if t.kind is None:
        return lambda v: v[start]
    if t.kind is type(None):
        return lambda v: None
    if t.kind not in (dict, list, tuple):
        return None
    end = start + t.num_leaves
    if t.kind is dict and not isinstance(t.aux, (tuple, list)):
        return None
    if all(c.kind is None for c in t.children):  # a flat container of leaves
        if t.kind is dict:
            keys = tuple(t.aux)
            return lambda v: dict(zip(keys, v[start:end]))
        if t.kind is tuple:
            return lambda v: tuple(v[start:end])
        return lambda v: v[start:end]
    subs, off = [], start
    for c in t.children:
        b = _builder(c, off)
        if b is None:
            return None
        subs.append(b)
        off += c.num_leaves
    if t.kind is dict:
        items = tuple(zip(tuple(t.aux), subs))
        return lambda v: {k: b(v) for k, b in items}
    if t.kind is tuple:
        return lambda v: tuple([b(v) for b in subs])
    return lambda v: [b(v) for b in subs]


def _numpy_dtypes() -> dict:
    """{dtype of a NumPy argument: the dtype it is passed on with}, as fc.asarray maps them:
    the Array API dtypes unchanged; others (float16, ...) are absent: the general path
    explains. Anything absent (non-native byte order, strings) takes
    the general path, which converts or explains."""
    table = {}
    for name in ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                 "uint64", "float16", "float32", "float64", "complex64", "complex128"):
        with contextlib.suppress(DTypeError):  # a dtype the core does not map: general path
            table[np.dtype(name)] = canonical_dtype(name)
    return table


_NUMPY_DTYPES = _numpy_dtypes()
_I32_MIN, _I32_MAX = -2 ** 31, 2 ** 31 - 1
_WEAK_FLOAT = ((), DEFAULT_FLOAT, "weak")
_WEAK_INT = ((), DEFAULT_INT, "weak")
_WEAK_BOOL = ((), bool_, "weak")
_WEAK_COMPLEX = ((), DEFAULT_COMPLEX, "weak")
_WIDE = {DEFAULT_FLOAT: np.dtype("float64"), DEFAULT_COMPLEX: np.dtype("complex128")}


def weak_dtype(x):
    """The dtype a Python scalar argument is traced with first: float32, int32, complex64 or
    bool as fc.asarray gives (JAX's defaults); an int beyond int32 int64 (rather than
    wrapping around); None for an int beyond int64."""
    t = type(x)
    if t is float:
        return DEFAULT_FLOAT
    if t is bool:
        return bool_
    if t is complex:
        return DEFAULT_COMPLEX
    if _I32_MIN <= x <= _I32_MAX:
        return DEFAULT_INT
    if -2 ** 63 <= x < 2 ** 63:
        return np.dtype("int64")
    return None


def weak_upgrades(avals, graph) -> dict:
    """{leaf: wider dtype} for weak float/complex scalar leaves that `graph` only uses
    converted to float64/complex128.

    Eager, `x64 * 0.1` multiplies by the float64 nearest 0.1 (a Python scalar is weak, it
    takes the array's dtype). The IR has no weak types: the first trace gives a scalar
    argument its default dtype (float32) and the wrapper converts it where it meets a float64
    array, so 0.1 would first be rounded to float32. When *every* use of the scalar is such a
    conversion, passing it as float64 instead changes no result type and gives eager's
    value. A scalar also used at float32 (`x32 * a + x64 * a`) stays float32.
    """
    from funconv.ops.elementwise import convert_element_type_p

    weak = {i: _WIDE[a[1]] for i, a in enumerate(avals) if a[2:] == ("weak",) and a[1] in _WIDE}
    if not weak:
        return {}
    uses: dict[int, list] = {id(graph.inputs[i]): [] for i in weak}
    for n in graph.nodes():
        for a in getattr(n, "args", ()):
            if id(a) in uses:
                uses[id(a)].append(n)
    out = {}
    for i, wide in weak.items():
        us = uses[id(graph.inputs[i])]
        if us and all(u.prim is convert_element_type_p and u.dtype.itemsize >= wide.itemsize
                      and u.dtype.kind in ("c" if wide.kind == "c" else "fc") for u in us):
            out[i] = wide
    return out


def upgraded(arrays: list, weak: dict, upgrade: dict) -> list:
    """`arrays` with the weak scalar leaves in `upgrade` remade, from their Python value, in
    the wider dtype the entry was compiled for."""
    if not upgrade:
        return list(arrays)
    out = list(arrays)
    for i, dt in upgrade.items():
        out[i] = Array._from_value(np.array(weak[i], dt))
    return out


def leaf_values(leaves: list) -> tuple:
    """Replace each leaf in `leaves` by the NumPy value the generated code takes; return the
    cache key: per leaf `(shape, dtype)`, or `(shape, dtype, True)` for a caller's NumPy
    array passed *without a copy* (see `Entry.values_call`). Raises NotFast for a leaf the
    general path must handle (a traced Array, an unusual dtype, an int beyond int32).

    The dtypes are those `fc.asarray` gives, so the key equals the general path's signature:
    NumPy arrays keep float64/int64; Python floats become float32, ints int32, complex
    complex64, as in JAX.
    """
    key = []
    for i, x in enumerate(leaves):
        t = type(x)
        if t is Array:
            v = x._value
            if v is None:  # traced (or donated, deleted): the general path explains
                raise NotFast
            key.append((v.shape, v.dtype))
        elif t is np.ndarray:
            dt = _NUMPY_DTYPES.get(x.dtype)
            if dt is None:
                raise NotFast
            v = x if x.dtype is dt else x.astype(dt, copy=False)
            if v.flags.writeable:
                # a read-only view (no data copied, ~0.3 us): an impl that wrongly wrote into
                # its input would fail loudly instead of changing the caller's data
                v = v.view()
                v.setflags(write=False)
            key.append((v.shape, dt, "numpy"))
        elif t is float:  # weak: left as is, converted by the entry (its dtype may be wider)
            key.append(_WEAK_FLOAT)
            continue
        elif t is int:
            if not _I32_MIN <= x <= _I32_MAX:
                raise NotFast
            key.append(_WEAK_INT)
            continue
        elif t is bool:
            key.append(_WEAK_BOOL)
            continue
        elif t is complex:
            key.append(_WEAK_COMPLEX)
            continue
        else:  # a NumPy scalar: a fresh 0-d array
            dt = _NUMPY_DTYPES.get(x.dtype) if isinstance(x, np.generic) else None
            if dt is None:
                raise NotFast
            v = np.array(x, dt)
            key.append(((), dt))
        leaves[i] = v
    return tuple(key)
