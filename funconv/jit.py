"""jit: trace -> passes -> backend.compile, cached per argument signature.

`jit(f)` returns a `Jitted` function. On a call outside any trace it looks up
a compiled `Executable` by the *signature* of the call: the pytree structure of
the dynamic arguments, each leaf's (shape, dtype), the static arguments'
values (and, implicitly, the backend of this Jitted). On a miss it traces `f`
with abstract inputs (values unknown, so Python control flow on them raises
ConcretizationError), runs the graph passes (funconv.passes.optimize) and
hands the graph to the backend. A call made while another trace is active
(inside grad, make_graph, vmap or another jit) runs no compiled code: the
traced graph is evaluated through the current interpreter, so it inlines and
the outer transformation sees (and differentiates, and optimises) through it.

The call path is lean: for positional Array arguments the key is a tuple of
(shape, dtype) pairs, found with one dict lookup, then the generated function
runs; no tracing and no dict building per call. Positional NumPy arrays and
Python scalars, and pytrees of dicts, lists and tuples of all these, take a
second fast path (`_leaf_values`: per leaf (shape, dtype), plus a structure
spec for pytrees); anything else (static arguments, registered containers,
traced values) goes through the general path, which builds the full signature
with funconv.tree.

NumPy arrays are passed to the generated code *uncopied* (a data batch per
training step costs no copy): their dtype is canonicalised as `fc.asarray`
does (float64 and int64 stay; uint8 -> int32, float16 -> float32), and the
generated code never writes into a non-donated input (it gets a read-only
view, so an impl that tried would fail rather than change the caller's
data). An output that may share memory with such an array (the backend's
`output_aliases`: the input itself, or a view of it) is copied, so results
stay immutable when the caller later writes into its array. A *donated* NumPy array is copied and
the copy donated: funconv never writes into a caller's NumPy array. A
donated Array is deleted after the call (`Array._delete`: its value becomes a
sentinel whose every attribute access raises), so a later use fails clearly
instead of reading a buffer that now holds a result. A donated buffer still
held elsewhere (an eager reshape or slice views it, the caller kept
`np.asarray(x)`, a compiled constant) is never written: its reference count
says so, and the call donates a private copy instead (`_unshared`).

Python scalars are weakly typed, as eager (`x32 * 2.0` stays float32). The IR
has no weak types, so a scalar argument is traced with its default dtype
(float32, int32, complex64, bool; an int beyond int32 as int64) and marked
"weak" in the cache key (a Python 2.0 and an fc.asarray(2.0) compile apart).
Against funconv's dtypes that promotes exactly as a weak scalar does, with
one exception handled by a second trace: a float (complex) scalar whose every
use is a conversion to float64 (complex128), as in `x64 * a`, is passed as
float64 (complex128), so no precision is lost (`_weak_upgrades`). A scalar
used both at float32 and float64 stays float32. `x ** 3` with a traced
exponent is a `pow` (integer-power specialisation needs a static exponent).

Recompiles are explained with `fc.config.update("explain_recompiles", True)`:
every cache miss after the first logs (logger "funconv.jit") which argument
changed and how. Imports tracing, tree, passes, config, errors; the backend is
imported lazily, by name.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import sys

import numpy as np

from funconv import config
from funconv import tree as tree_util
from funconv.array import Array
from funconv.errors import ArgumentError, DTypeError, TracerLeakError
from funconv.ops._core import asarray, describe
from funconv.staging import trace_to_graph
from funconv.tracing import EAGER, _current, eval_graph
from funconv.types import DEFAULT_COMPLEX, DEFAULT_FLOAT, DEFAULT_INT, bool_, canonical_dtype

logger = logging.getLogger("funconv.jit")


def _as_tuple(nums, what: str) -> tuple:
    if nums is None:
        return ()
    if isinstance(nums, (int, str)):
        return (nums,)
    try:
        return tuple(nums)
    except TypeError:
        raise ArgumentError(f"jit: {what} must be an int/str or a sequence of them, "
                            f"got {nums!r}") from None


class Lowered:
    """What `jitted.lower(*args)` returns: the optimised graph and the generated code.

    Attributes:
        graph: the graph after the passes (what the backend compiled).
        source: the generated source code.
        executable: the backend's compiled object.
    """

    def __init__(self, graph, source, executable):
        self.graph = graph
        self.source = source
        self.executable = executable

    def __repr__(self) -> str:
        return f"Lowered(\n{self.graph}\n)"


def _wrap(v) -> Array:
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


class _Entry:
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
        fn = executable.fn
        if len(graph.outputs) != out_tree.num_leaves:
            raise AssertionError("jit: the graph's outputs do not match its output structure")
        # per output, the inputs it may share memory with (None: unknown, so any of them)
        self.aliases = getattr(executable, "output_aliases", None)
        # The common output structures get their own closure: no generic unflatten per call
        if out_tree.kind is None:
            def call_values(values):
                return _wrap(fn(*values)[0])
        elif out_tree.kind is tuple and all(c.kind is None for c in out_tree.children):
            def call_values(values):
                return tuple([_wrap(v) for v in fn(*values)])
        else:
            unflatten = _unflattener(out_tree)

            def call_values(values):
                return unflatten([_wrap(v) for v in fn(*values)])

        def call(arrays):
            return call_values([a._value for a in arrays])

        self.call = call
        self.call_values = call_values

    def values_call(self, numpy_leaves: frozenset, donated: tuple, weak: list = ()):
        """`call_values` for leaves as `_leaf_values` gives them: NumPy arrays uncopied, and
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
        fn = self.executable.fn
        unflatten = _unflattener(self.out_tree)

        def call_copying(values):
            for i, dt in weak:
                values[i] = np.array(values[i], dt)
            for i in copy_in:
                values[i] = values[i].copy()
            outs = list(fn(*values))
            for k in copy_out:
                outs[k] = np.array(outs[k], copy=True)
            return unflatten([_wrap(v) for v in outs])

        return call_copying


class Jitted:
    """A function compiled per argument signature (see `jit`)."""

    def __init__(self, f, static_argnums=(), static_argnames=(), donate_argnums=(), backend="numpy"):
        if not callable(f):
            raise ArgumentError(f"jit: expected a function, got {describe(f)}")
        functools.update_wrapper(self, f)
        self._f = f
        self._backend = backend
        static_argnums = _as_tuple(static_argnums, "static_argnums")
        static_argnames = _as_tuple(static_argnames, "static_argnames")
        self._donate = frozenset(_as_tuple(donate_argnums, "donate_argnums"))
        # map names <-> positions through the signature, as JAX does, when it has one
        try:
            params = list(inspect.signature(f).parameters.values())
        except (TypeError, ValueError):
            params = []
        positional = [p.name for p in params
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        nums = set(static_argnums)
        names = set(static_argnames)
        for i, nm in enumerate(positional):
            if nm in names:
                nums.add(i)
            if i in nums:
                names.add(nm)
        self._static_nums = frozenset(nums)
        self._static_names = frozenset(names)
        self._cache: dict = {}
        # positional-Array-only calls: key = ((shape, dtype), ...) -> entry.call
        self._fast: dict = {}
        # positional leaves, some NumPy arrays or scalars: key = _leaf_values(args) -> call
        self._fast_leaves: dict = {}
        # pytree calls: key = (container spec, _leaf_values(leaves)) -> call
        self._fast_trees: dict = {}
        self._fast_ok = not self._static_nums and not self._static_names
        # with donation: key = (container spec, _leaf_values(leaves)) -> (call, donated leaves)
        self._fast_donating: dict = {}
        self._inline_graphs: dict = {}
        self._last_sig = None
        self.compiles = 0  # number of compilations (for tests and curiosity)

    # -- the call path -------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if _current.get() is EAGER:
            if not kwargs:
                try:
                    call = self._fast.get(tuple([(a._value.shape, a._value.dtype) for a in args]))
                except AttributeError:  # not all Arrays (or an abstract one: the slow path says)
                    call = None
                    if self._fast_leaves:
                        # positional NumPy arrays and scalars (a data batch, a learning rate)
                        values = list(args)
                        try:
                            call = self._fast_leaves.get(_leaf_values(values))
                        except _NotFast:
                            pass
                        if call is not None:
                            return call(values)
                if call is not None:
                    return call(args)
            if self._donate:
                return self._call_donating(args, kwargs)
            if self._fast_ok:
                # pytrees of dicts, lists and tuples of Arrays (parameters, optimizer states),
                # NumPy arrays (data batches: passed uncopied) and Python scalars
                leaves: list = []
                try:
                    spec = _spec((args, kwargs), leaves)
                    call = self._fast_trees.get((spec, _leaf_values(leaves)))
                except _NotFast:
                    call = None
                if call is not None:
                    return call(leaves)
        return self._call_slow(args, kwargs)

    def _call_donating(self, args, kwargs):
        """The fast path of a Jitted with donate_argnums, which deletes the donated Arrays."""
        if self._fast_ok:
            leaves: list = []
            try:
                spec = _spec((args, kwargs), leaves)
                values = list(leaves)
                hit = self._fast_donating.get((spec, _leaf_values(values)))
            except _NotFast:
                hit = None
            if hit is not None:
                call, donated = hit
                for i in donated:  # (`values` holds one more reference to each buffer)
                    if type(leaves[i]) is Array and _shared(leaves[i], extra=1):
                        values[i] = values[i].copy()
                out = call(values)
                _delete(leaves, donated)
                return out
            values = None  # the general path counts references to the donated buffers
        return self._call_slow(args, kwargs)

    def _split(self, args, kwargs):
        """(dynamic positional args, dynamic keyword args, sorted statics, static positions)."""
        nargs = len(args)
        nums = {i % nargs if nargs else i for i in self._static_nums if -nargs <= i < nargs}
        dyn_args, statics = [], []
        for i, a in enumerate(args):
            if i in nums:
                statics.append((i, a))
            else:
                dyn_args.append(a)
        dyn_kwargs = {}
        for k, v in kwargs.items():
            if k in self._static_names:
                statics.append((k, v))
            else:
                dyn_kwargs[k] = v
        statics.sort(key=lambda kv: (isinstance(kv[0], str), kv[0]))
        for where, v in statics:
            try:
                hash(v)
            except TypeError:
                label = f"argument {where}" if isinstance(where, int) else f"keyword argument {where!r}"
                raise ArgumentError(
                    f"jit({self.__name__}): static {label} is {describe(v)}, which is unhashable; "
                    "static arguments are part of the compilation cache key. Pass a tuple "
                    "instead of a list (or a frozen object), or make it a dynamic array "
                    "argument") from None
        return dyn_args, dyn_kwargs, tuple(statics), nums

    def _signature(self, args, kwargs):
        """(signature, Arrays of the dynamic leaves, {leaf: Python scalar}, static positions).

        A Python scalar leaf is weakly typed: its aval carries a "weak" mark, its Array has the
        default dtype of its kind (as fc.asarray gives), and its value is kept so that a
        compilation may pass it on in a wider dtype (see `_weak_upgrades`).
        """
        dyn_args, dyn_kwargs, statics, nums = self._split(args, kwargs)
        leaves, treedef = tree_util.flatten((dyn_args, dyn_kwargs))
        arrays, avals, weak = [], [], {}
        for i, leaf in enumerate(leaves):
            if isinstance(leaf, Array):
                arrays.append(leaf)
                avals.append((leaf.shape, leaf.dtype))
                continue
            if type(leaf) in _SCALARS:
                dt = _weak_dtype(leaf)
                if dt is None:
                    raise ArgumentError(
                        f"jit({self.__name__}): the Python int {leaf} does not fit in int64; "
                        "pass it as a float, or mark the argument static")
                weak[i] = leaf
                arrays.append(Array._from_value(np.array(leaf, dt)))
                avals.append(((), dt, "weak"))
                continue
            if isinstance(leaf, np.ndarray) and not leaf.dtype.isnative:  # big-endian data
                leaf = leaf.astype(leaf.dtype.newbyteorder("="))
            try:
                a = asarray(leaf)
            except ArgumentError:
                if isinstance(leaf, (np.ndarray, np.generic)):
                    raise  # an array of a dtype funconv does not hold: asarray says which
                raise ArgumentError(
                    f"jit({self.__name__}): a dynamic argument holds {describe(leaf)}, which is "
                    "not an array; mark that argument static (static_argnums / static_argnames) "
                    "so its value becomes part of the cache key") from None
            arrays.append(a)
            avals.append((a.shape, a.dtype))
        sig = (treedef, tuple(avals), statics)
        return sig, arrays, weak, nums

    def _call_slow(self, args, kwargs):
        sig, arrays, weak, nums = self._signature(args, kwargs)
        if _current.get() is not EAGER:
            return self._inline(sig, arrays, weak, args, kwargs, nums)
        for a in arrays:
            if a._trace is not None:
                raise TracerLeakError(
                    f"jit({self.__name__}): got a traced value {a.aval.short()} from a finished "
                    "transformation; it leaked out of the function that was traced")
        entry = self._cache.get(sig)
        if entry is None:
            entry = self._compile(sig, arrays, args, kwargs, nums)
        elif self._fast_ok:  # compiled for other kinds of leaves (Arrays vs NumPy): the fast path
            self._register_fast(entry, sig, args, kwargs, nums)
        if not self._donate:
            return entry.call(_upgraded(arrays, weak, entry.upgrade))
        donated = self._donated_leaves(sig, args, nums)
        out = entry.call(_unshared(_upgraded(arrays, weak, entry.upgrade), donated))
        _delete(arrays, donated)
        return out

    # -- tracing and compiling -----------------------------------------------------------------------
    def _flat_fun(self, sig, args, kwargs, nums):
        """`f` as a function of the flat list of dynamic leaves."""
        treedef = sig[0]
        f = self._f
        static_kw = {k: v for k, v in kwargs.items() if k in self._static_names}

        def flat(*leaves):
            dyn_args, dyn_kwargs = tree_util.unflatten(treedef, leaves)
            it = iter(dyn_args)
            full = [a if i in nums else next(it) for i, a in enumerate(args)]
            return f(*full, **dyn_kwargs, **static_kw)

        flat.__name__ = getattr(f, "__name__", "f")
        return flat

    def _trace(self, sig, arrays, args, kwargs, nums):
        """(graph, captured, upgrade): `f` traced; weak scalars widened where eager would.

        `upgrade` maps a weak scalar leaf to the dtype it is passed in (float64, complex128)
        when the first trace used it only converted to that dtype; see `_weak_upgrades`.
        """
        flat = self._flat_fun(sig, args, kwargs, nums)
        graph, captured = trace_to_graph(flat, arrays)
        upgrade = _weak_upgrades(sig[1], graph)
        if upgrade:
            wide = list(arrays)
            for i, dt in upgrade.items():
                wide[i] = Array._from_value(np.zeros((), dt))
            graph2, captured2 = trace_to_graph(flat, wide)
            # the widening never changes an output's type (each use was that wide already);
            # should a function still differ (it looked at a dtype), keep the first trace
            if [o.type for o in graph2.outputs] == [o.type for o in graph.outputs]:
                return graph2, captured2, upgrade
        return graph, captured, {}

    def _inline(self, sig, arrays, weak, args, kwargs, nums):
        """Under an outer trace: evaluate the traced graph through it (no compiled code)."""
        cached = self._inline_graphs.get(sig)
        captured = []
        if cached is None:
            graph, captured, upgrade = self._trace(sig, arrays, args, kwargs, nums)
            if not captured:  # a graph that captured an outer trace's values is not reusable
                self._inline_graphs[sig] = (graph, upgrade)
        else:
            graph, upgrade = cached
        outs = eval_graph(graph, _upgraded(arrays, weak, upgrade) + list(captured))
        return tree_util.unflatten(graph.out_tree, outs)

    def _donated_leaves(self, sig, args, nums) -> tuple[int, ...]:
        if not self._donate:
            return ()
        nargs = len(args)
        donate = {i % nargs for i in self._donate if -nargs <= i < nargs}
        out, k = [], 0
        for i, a in enumerate(args):
            if i in nums:
                continue
            n = len(tree_util.leaves(a))
            if i in donate:
                out.extend(range(k, k + n))
            k += n
        return tuple(out)

    def _compile(self, sig, arrays, args, kwargs, nums) -> _Entry:
        from funconv import passes
        from funconv.backends import get_backend

        if self._cache and config.explain_recompiles:
            self._explain(sig, args, kwargs, nums)
        backend = get_backend(self._backend)
        graph, captured, upgrade = self._trace(sig, arrays, args, kwargs, nums)
        assert not captured  # outside any trace there is nothing to capture
        graph = passes.optimize(graph)
        exe = backend.compile(graph, donate=self._donated_leaves(sig, args, nums),
                              name=getattr(self._f, "__name__", "jitted"))
        entry = _Entry(exe, graph, graph.out_tree, upgrade)
        self._cache[sig] = entry
        self.compiles += 1
        self._last_sig = (sig, self._labels(args, kwargs, nums))
        if self._fast_ok:
            self._register_fast(entry, sig, args, kwargs, nums)
        return entry

    def _register_fast(self, entry: _Entry, sig, args, kwargs, nums) -> None:
        """Make calls like this one (same structure, leaf types and kinds) take a fast path."""
        avals = sig[1]
        donated = self._donated_leaves(sig, args, nums)
        if not kwargs and all(type(a) is Array for a in args):
            self._fast[avals] = _deleting(entry.call, donated) if donated else entry.call
        leaves: list = []
        try:
            spec = _spec((args, kwargs), leaves)
            key = _leaf_values(leaves)  # (turns `leaves` into values: unused here)
        except _NotFast:
            return
        if tuple([k[:2] if k[2:] == ("numpy",) else k for k in key]) != avals:
            return  # cannot happen; never serve a wrong entry
        numpy_leaves = frozenset([i for i, k in enumerate(key) if k[2:] == ("numpy",)])
        weak = [(i, entry.upgrade.get(i, k[1])) for i, k in enumerate(key) if k[2:] == ("weak",)]
        call = entry.values_call(numpy_leaves, donated, weak)
        if self._donate:  # (even when this call donates nothing: the path must see the leaves)
            self._fast_donating[(spec, key)] = (call, donated)
            return
        self._fast_trees[(spec, key)] = call
        if not kwargs and all(_spec(a, []) == 0 for a in args):  # positional leaves only
            self._fast_leaves[key] = call

    def profile(self, *args, repeat: int = 10, **kwargs):
        """Time each line of the compiled code on these arguments (compiled if needed).

        Returns a Profile: `print` it for a table of the generated lines, slowest first,
        each with milliseconds per call, its share, the primitive, its result type and
        your line that made it. The inputs are not changed (donated ones are copied).
        """
        sig, arrays, weak, nums = self._signature(args, kwargs)
        entry = self._cache.get(sig)
        if entry is None:
            entry = self._compile(sig, arrays, args, kwargs, nums)
        timer = getattr(entry.executable, "profile", None)
        if timer is None:
            raise NotImplementedError(f"jit({self.__name__}).profile: the {self._backend!r} "
                                      "backend has no per-line profile; use backend='numpy'")
        values = [a._value for a in _upgraded(arrays, weak, entry.upgrade)]
        return timer(values, repeat, copy_inputs=bool(self._donated_leaves(sig, args, nums)))

    def lower(self, *args, **kwargs) -> Lowered:
        """Trace, optimise and generate code for these arguments (compiled and cached)."""
        sig, arrays, _, nums = self._signature(args, kwargs)
        entry = self._cache.get(sig)
        if entry is None:
            entry = self._compile(sig, arrays, args, kwargs, nums)
        return Lowered(entry.graph, entry.executable.source, entry.executable)

    # -- explaining recompiles ------------------------------------------------------------------------
    def _labels(self, args, kwargs, nums) -> list[str]:
        """A readable name for every dynamic leaf: `x` / `params['w']` / `argument 2[0]`."""
        try:
            names = list(inspect.signature(self._f).parameters)
        except (TypeError, ValueError):
            names = []
        labels = []
        for i, a in enumerate(args):
            if i in nums:
                continue
            base = names[i] if i < len(names) else f"argument {i}"
            labels += _leaf_paths(base, a)
        for k in sorted(kwargs):
            if k not in self._static_names:
                labels += _leaf_paths(k, kwargs[k])
        return labels

    def _explain(self, sig, args, kwargs, nums) -> None:
        (old_sig, old_labels) = self._last_sig
        msg = explain_difference(old_sig, old_labels, sig, self._labels(args, kwargs, nums))
        logger.warning("jit(%s): recompiling (compilation %d): %s", self.__name__,
                       self.compiles + 1, msg)

    def __repr__(self) -> str:
        return f"<jitted {self.__name__}: {len(self._cache)} compiled signature(s)>"

    def __get__(self, obj, objtype=None):
        # methods: `@fc.jit` on a method binds like a function
        if obj is None:
            return self
        return functools.partial(self, obj)


def _delete(leaves, donated) -> None:
    """Mark the donated Array leaves deleted: their buffers may now hold results (as JAX)."""
    for i in donated:
        if type(leaves[i]) is Array:
            leaves[i]._delete()


def _deleting(call, donated):
    """`call(arrays)` that then deletes the donated ones (positional Arrays: leaf = position)."""
    def call_and_delete(arrays):
        out = call(_unshared(arrays, donated))
        _delete(arrays, donated)
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


# references to an Array's value when nothing else holds it, measured the way `_shared` does
_OWN_REFS = _value_refs(Array._from_value(np.zeros(1))) if _getrefcount is not None else None


def _shared(a: Array, extra: int = 0) -> bool:
    """Does anything besides `a` (and `extra` references the caller knows of) hold a's buffer?"""
    return _OWN_REFS is None or _value_refs(a) > _OWN_REFS + extra


def _unshared(arrays, donated):
    """`arrays` with each donated Array whose buffer is held elsewhere replaced by a private
    copy (which the call may then overwrite); the others as they are."""
    out = None
    for i in donated:
        a = arrays[i]
        if type(a) is Array and _shared(a):
            if out is None:
                out = list(arrays)
            out[i] = Array._from_value(a._value.copy())
    return arrays if out is None else out


class _NotFast(Exception):
    """A call whose arguments the fast path does not handle (the slow path does)."""


_SCALARS = (float, int, bool, complex)


def _spec(x, leaves: list):
    """A hashable description of the structure of `x`, appending its leaves.

    Handles exactly dict, list, tuple and None (the containers of parameters and optimizer
    states) around Arrays, NumPy arrays and scalars, and Python scalars, ordering leaves as
    funconv.tree.flatten does (dict keys sorted); anything else raises _NotFast.
    """
    t = type(x)
    if t is dict:
        keys = sorted(x)
        children = [x[k] for k in keys]
    elif t is tuple or t is list:
        children = x
    elif t is Array or t is np.ndarray or t in _SCALARS or isinstance(x, np.generic):
        leaves.append(x)
        return 0
    elif x is None:
        return None
    else:
        raise _NotFast
    subs = []
    for c in children:
        tc = type(c)
        if tc is Array or tc is np.ndarray:  # the common leaves, without a call per leaf
            leaves.append(c)
            subs.append(0)
        else:
            subs.append(_spec(c, leaves))
    return (dict, tuple(keys), tuple(subs)) if t is dict else (t, tuple(subs))


def _unflattener(treedef):
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
    supported dtypes (float64 and int64 included) unchanged, others (uint8, float16, ...)
    to the nearest supported one. Anything absent (non-native byte order, strings) takes
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


def _weak_dtype(x):
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


def _weak_upgrades(avals, graph) -> dict:
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


def _upgraded(arrays: list, weak: dict, upgrade: dict) -> list:
    """`arrays` with the weak scalar leaves in `upgrade` remade, from their Python value, in
    the wider dtype the entry was compiled for."""
    if not upgrade:
        return list(arrays)
    out = list(arrays)
    for i, dt in upgrade.items():
        out[i] = Array._from_value(np.array(weak[i], dt))
    return out


def _leaf_values(leaves: list) -> tuple:
    """Replace each leaf in `leaves` by the NumPy value the generated code takes; return the
    cache key: per leaf `(shape, dtype)`, or `(shape, dtype, True)` for a caller's NumPy
    array passed *without a copy* (see `_Entry.values_call`). Raises _NotFast for a leaf the
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
                raise _NotFast
            key.append((v.shape, v.dtype))
        elif t is np.ndarray:
            dt = _NUMPY_DTYPES.get(x.dtype)
            if dt is None:
                raise _NotFast
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
                raise _NotFast
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
                raise _NotFast
            v = np.array(x, dt)
            key.append(((), dt))
        leaves[i] = v
    return tuple(key)


def _leaf_paths(base: str, tree) -> list[str]:
    leaves, td = tree_util.flatten(tree)
    if td.kind is None:
        return [base]
    paths: list[str] = []

    def walk(x, path):
        kind = type(x)
        if isinstance(x, dict):
            for k in sorted(x):
                walk(x[k], f"{path}[{k!r}]")
        elif isinstance(x, (list, tuple)) and (kind in (list, tuple) or hasattr(x, "_fields")):
            for j, c in enumerate(x):
                walk(c, f"{path}[{j}]")
        elif x is None:
            return
        else:
            paths.append(path)

    walk(tree, base)
    if len(paths) != len(leaves):  # registered or attrs containers: fall back to indices
        paths = [f"{base} leaf {j}" for j in range(len(leaves))]
    return paths


def explain_difference(old_sig, old_labels, new_sig, new_labels) -> str:
    """Why `new_sig` missed the cache, compared with the previous signature."""
    (otree, oavals, ostat), (ntree, navals, nstat) = old_sig, new_sig
    reasons = []
    if otree != ntree:
        reasons.append(f"the argument structure changed from {otree} to {ntree} "
                       "(positional arguments, keyword arguments)")
    else:
        for lab, o, n in zip(new_labels, oavals, navals):
            (os_, od), (ns, nd) = o[:2], n[:2]
            if od != nd:
                reasons.append(f"{lab}: dtype changed {np.dtype(od).name} -> {np.dtype(nd).name}")
            if os_ != ns:
                reasons.append(f"{lab}: shape changed {os_} -> {ns}")
            if o[2:] != n[2:] and od == nd and os_ == ns:
                kinds = ["a Python scalar" if a[2:] == ("weak",) else "an array" for a in (o, n)]
                reasons.append(f"{lab}: changed from {kinds[0]} to {kinds[1]} (a Python scalar "
                               "is weakly typed, so it is compiled separately)")
    if ostat != nstat:
        old = dict(ostat)
        new = dict(nstat)
        for k in sorted(set(old) | set(new), key=str):
            if old.get(k, "<absent>") != new.get(k, "<absent>"):
                where = f"argument {k}" if isinstance(k, int) else f"keyword argument {k!r}"
                reasons.append(f"static {where} changed from {old.get(k, '<absent>')!r} to "
                               f"{new.get(k, '<absent>')!r}")
    if not reasons:
        reasons.append("a signature seen before was evicted, or differs only in a way not shown")
    return "; ".join(reasons)


def jit(f=None, *, static_argnums=(), static_argnames=(), donate_argnums=(), backend="numpy"):
    """Compile `f` for each new argument signature; cached.

    Usable as `jit(f, ...)`, `@jit` or `@jit(static_argnums=...)`.

    Args:
        f: a pure function of arrays (pytrees of arrays) returning arrays (pytrees).
        static_argnums: positions of arguments that are Python values, not arrays: their
            values are part of the cache key (they must be hashable) and `f` sees them as is,
            so Python control flow may depend on them.
        static_argnames: the same, by keyword name.
        donate_argnums: positions of arguments whose buffers the compiled code may
            overwrite (e.g. parameters updated in place by an SGD step). After the call a
            donated Array is deleted (`x.is_deleted()`; any use raises ArgumentError), as in
            JAX: its buffer may hold a result. A buffer that something else still holds
            (a view from an eager reshape or slice, an `np.asarray(x)` you kept) is copied
            rather than overwritten, and so is a donated NumPy array (the caller's NumPy
            arrays are never written, nor deleted). Inside another trace
            (grad, make_graph, an outer jit) donation does nothing.
        backend: "numpy" (generated Python over NumPy), or another registered backend.

    Returns:
        A `Jitted` function with `.lower(*args)` -> `Lowered` (`.graph`, `.source`).

    Under jit, Python control flow on traced values (`if x > 0`, `float(x)`, `x.item()`)
    raises ConcretizationError: make the argument static, or use `fc.where`.
    """
    def wrap(fun):
        return Jitted(fun, static_argnums, static_argnames, donate_argnums, backend)

    if f is None:
        return wrap
    return wrap(f)
