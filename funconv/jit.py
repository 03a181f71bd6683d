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

The call path (dispatch.py) is lean: for positional Array arguments the key is a tuple of
(shape, dtype) pairs, found with one dict lookup, then the generated function
runs; no tracing and no dict building per call. Positional NumPy arrays and
Python scalars, and pytrees of dicts, lists and tuples of all these, take a
second fast path (`leaf_values`: per leaf (shape, dtype), plus a structure
spec for pytrees); anything else (static arguments, registered containers,
traced values) goes through the general path, which builds the full signature
with funconv.tree.

NumPy arrays are passed to the generated code *uncopied* (a data batch per
training step costs no copy): their dtype is canonicalised as `fc.asarray`
does (every Array API dtype stays; float16 is rejected), and the
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
says so, and the call donates a private copy instead (`unshared`).

Python scalars are weakly typed, as eager (`x32 * 2.0` stays float32). The IR
has no weak types, so a scalar argument is traced with its default dtype
(float32, int32, complex64, bool; an int beyond int32 as int64) and marked
"weak" in the cache key (a Python 2.0 and an fc.asarray(2.0) compile apart).
Against funconv's dtypes that promotes exactly as a weak scalar does, with
one exception handled by a second trace: a float (complex) scalar whose every
use is a conversion to float64 (complex128), as in `x64 * a`, is passed as
float64 (complex128), so no precision is lost (`weak_upgrades`). A scalar
used both at float32 and float64 stays float32. `x ** 3` with a traced
exponent is a `pow` (integer-power specialisation needs a static exponent).

Recompiles are explained with `fc.config.update("explain_recompiles", True)`:
every cache miss after the first logs (logger "funconv.jit") which argument
changed and how. Imports tracing, tree, dispatch, passes, config, errors; the
backend is imported lazily, by name, and used only through the executable protocol
of `funconv.backends` (so a new backend needs no change here).
"""

from __future__ import annotations

import functools
import inspect
import logging

import numpy as np

from funconv import config
from funconv import tree as tree_util
from funconv.array import Array
from funconv.errors import ArgumentError, FuncConvError, TracerLeakError
from funconv.dispatch import (SCALARS, Entry, NotFast, delete, deleting, leaf_values, shared, tree_spec,
                              unshared, upgraded, weak_dtype, weak_upgrades)
from funconv.ops._core import asarray, describe
from funconv.staging import trace_to_graph
from funconv.tracing import EAGER, _current, eval_graph

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
        conv_plans: per convolution node, the algorithms considered, their predicted (and,
            with conv_planning="measure", measured) seconds and the choice
            (funconv/passes/plans.py's `ConvPlan`s; `print(plans.table(...))` or each).
    """

    def __init__(self, graph, source, executable):
        from funconv.passes import plans

        self.graph = graph
        self.source = source
        self.executable = executable
        self.conv_plans = plans.records(graph)

    def __repr__(self) -> str:
        return f"Lowered(\n{self.graph}\n)"


class Jitted:
    """A function compiled per argument signature (see `jit`)."""

    def __init__(self, f, static_argnums=(), static_argnames=(), donate_argnums=(), backend=None):
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
        # positional leaves, some NumPy arrays or scalars: key = leaf_values(args) -> call
        self._fast_leaves: dict = {}
        # pytree calls: key = (container spec, leaf_values(leaves)) -> call
        self._fast_trees: dict = {}
        self._fast_ok = not self._static_nums and not self._static_names
        # with donation: key = (container spec, leaf_values(leaves)) -> (call, donated leaves)
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
                            call = self._fast_leaves.get(leaf_values(values))
                        except NotFast:
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
                    spec = tree_spec((args, kwargs), leaves)
                    call = self._fast_trees.get((spec, leaf_values(leaves)))
                except NotFast:
                    call = None
                if call is not None:
                    return call(leaves)
        return self._call_slow(args, kwargs)

    def _call_donating(self, args, kwargs):
        """The fast path of a Jitted with donate_argnums, which deletes the donated Arrays."""
        if self._fast_ok:
            leaves: list = []
            try:
                spec = tree_spec((args, kwargs), leaves)
                values = list(leaves)
                hit = self._fast_donating.get((spec, leaf_values(values)))
            except NotFast:
                hit = None
            if hit is not None:
                call, donated = hit
                for i in donated:  # (`values` holds one more reference to each buffer)
                    if type(leaves[i]) is Array and shared(leaves[i], extra=1):
                        values[i] = values[i].copy()
                out = call(values)
                delete(leaves, donated)
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
        compilation may pass it on in a wider dtype (see `weak_upgrades`).
        """
        dyn_args, dyn_kwargs, statics, nums = self._split(args, kwargs)
        leaves, treedef = tree_util.flatten((dyn_args, dyn_kwargs))
        arrays, avals, weak = [], [], {}
        for i, leaf in enumerate(leaves):
            if isinstance(leaf, Array):
                arrays.append(leaf)
                avals.append((leaf.shape, leaf.dtype))
                continue
            if type(leaf) in SCALARS:
                dt = weak_dtype(leaf)
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
            return entry.call(upgraded(arrays, weak, entry.upgrade))
        donated = self._donated_leaves(sig, args, nums)
        out = entry.call(unshared(upgraded(arrays, weak, entry.upgrade), donated))
        delete(arrays, donated)
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
        when the first trace used it only converted to that dtype; see `weak_upgrades`.
        """
        flat = self._flat_fun(sig, args, kwargs, nums)
        graph, captured = trace_to_graph(flat, arrays)
        upgrade = weak_upgrades(sig[1], graph)
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
        outs = eval_graph(graph, upgraded(arrays, weak, upgrade) + list(captured))
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

    def _compile(self, sig, arrays, args, kwargs, nums) -> Entry:
        from funconv import passes
        from funconv.backends import get_backend

        if self._cache and config.explain_recompiles:
            self._explain(sig, args, kwargs, nums)
        backend = get_backend(self._backend or config.backend)  # None: the config default, at compile
        try:
            graph, captured, upgrade = self._trace(sig, arrays, args, kwargs, nums)
        except FuncConvError as e:
            if self._cache and self._last_sig is not None:  # it worked before: what is new
                old_sig, old_labels = self._last_sig
                e.add_note(f"(while jit({self.__name__}) traced it again for new arguments: "
                           f"{explain_difference(old_sig, old_labels, sig, self._labels(args, kwargs, nums))})")
            raise
        assert not captured  # outside any trace there is nothing to capture
        graph = passes.optimize(graph, getattr(backend, "LACKS", ()))
        exe = backend.compile(graph, donate=self._donated_leaves(sig, args, nums),
                              name=getattr(self._f, "__name__", "jitted"))
        entry = Entry(exe, graph, graph.out_tree, upgrade)
        self._cache[sig] = entry
        self.compiles += 1
        self._last_sig = (sig, self._labels(args, kwargs, nums))
        if self._fast_ok:
            self._register_fast(entry, sig, args, kwargs, nums)
        return entry

    def _register_fast(self, entry: Entry, sig, args, kwargs, nums) -> None:
        """Make calls like this one (same structure, leaf types and kinds) take a fast path."""
        avals = sig[1]
        donated = self._donated_leaves(sig, args, nums)
        if not kwargs and all(type(a) is Array for a in args):
            self._fast[avals] = deleting(entry.call, donated) if donated else entry.call
        leaves: list = []
        try:
            spec = tree_spec((args, kwargs), leaves)
            key = leaf_values(leaves)  # (turns `leaves` into values: unused here)
        except NotFast:
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
        if not kwargs and all(tree_spec(a, []) == 0 for a in args):  # positional leaves only
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
            raise NotImplementedError(f"jit({self.__name__}).profile: the {self._backend or config.backend!r} "
                                      "backend has no per-line profile; use backend='numpy'")
        values = [a._value for a in upgraded(arrays, weak, entry.upgrade)]
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


def jit(f=None, *, static_argnums=(), static_argnames=(), donate_argnums=(), backend=None):
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
        backend: "numpy" (generated Python over NumPy), "opencl", or another registered backend;
            None: `fc.config.backend` when a signature is compiled (default "numpy").

    Returns:
        A `Jitted` function with `.lower(*args)` -> `Lowered` (`.graph`, the optimized
        graph; `.source`, the generated code; `.conv_plans`, the algorithm chosen for each
        convolution and the candidates' predicted times) and `.profile(*args)` (each
        generated line's time per call, slowest first, with the line of `f` that made it).

    Under jit, Python control flow on traced values (`if x > 0`, `float(x)`, `x.item()`)
    raises ConcretizationError: make the argument static, or use `fc.where`.
    """
    def wrap(fun):
        return Jitted(fun, static_argnums, static_argnames, donate_argnums, backend)

    if f is None:
        return wrap
    return wrap(f)
