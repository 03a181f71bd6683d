"""Testing helpers, for users and for funconv's own suite.

Gradient checks by random directions, as in JAX (`jax.test_util.check_grads`)
and autograd: for random input directions v and output directions u,

- reverse mode (`check_vjp`): `<u, J v>`, with J v from central differences
  computed in float64, must match `<J^T u, v>` with J^T u from `vjp`;
- forward mode (`check_jvp`): J v from `jvp` must match central differences;
- `check_grads` checks both up to any order (the derivative functions are
  themselves checked by finite differences, recursively).

`strategies` holds hypothesis strategies (shapes, dtypes, arrays within a
domain, convolution problems) so a function is property-tested in one line::

    @given(fc.testing.strategies.arrays((3, 4), elements="positive"))
    def test_my_fn(x):
        fc.testing.check_grads(my_fn, (x,))

Hypothesis is imported lazily, inside `strategies`: `import funconv` works
without it. Imports autodiff, tree and ops.
"""

from __future__ import annotations

import numpy as np

from funconv import tree as tree_util
from funconv.array import Array
from funconv.autodiff import jvp, vjp
from funconv.errors import ArgumentError
from funconv.ops._core import asarray
from funconv.types import SUPPORTED, is_inexact

# Default (eps, atol, rtol) by the lowest precision among the differentiated leaves.
# float64: central differences are accurate to ~eps**2 times the third derivative
# (truncation) + 1e-16/eps (rounding), ~1e-10 at eps=1e-5 for moderate third derivatives,
# well inside 1e-5 (a failing check retries with Richardson's extrapolation, O(eps**4)).
# float32: rounding dominates (6e-8/1e-3 ~ 1e-4 relative), hence the looser 1e-2 that JAX
# also uses for float32.
_DEFAULTS = {"double": (1e-5, 1e-5, 1e-5), "single": (1e-3, 1e-2, 1e-2)}


def _precision(leaves) -> str:
    dts = [np.dtype(x.dtype) for x in leaves]
    return "single" if any(d in (np.float32, np.complex64) for d in dts) else "double"


def _defaults(leaves, eps, atol, rtol):
    d_eps, d_atol, d_rtol = _DEFAULTS[_precision(leaves)]
    return (d_eps if eps is None else eps, d_atol if atol is None else atol,
            d_rtol if rtol is None else rtol)


# --- numerical helpers (NumPy, float64) -------------------------------------------------


def _np64(x) -> np.ndarray:
    """A concrete value in float64 (complex128 for complex)."""
    v = np.asarray(x)
    return v.astype(np.complex128 if v.dtype.kind == "c" else np.float64)


def _random_like(rng: np.random.Generator, x) -> np.ndarray:
    """A standard normal direction with x's shape (complex for complex x), in float64."""
    shape = np.shape(x)
    if np.dtype(x.dtype).kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)
    return rng.standard_normal(shape)


def _inner(xs, ys) -> float:
    """Real inner product sum(Re(conj(x) y)) over lists of arrays, in float64."""
    return float(sum(np.real(np.vdot(_np64(x).ravel(), _np64(y).ravel())) for x, y in zip(xs, ys)))


def _moved(args_leaves, vs, step: float):
    """The leaves moved by `step * v` (computed in float64, stored in each leaf's dtype)."""
    return [asarray((_np64(x) + step * v).astype(np.asarray(x).dtype)) for x, v in zip(args_leaves, vs)]


def _numerical_jvp(f, leaves, treedef, vs, eps: float, refine: bool = False) -> list[np.ndarray]:
    """J v by central differences, D(eps) = (f(x + eps v) - f(x - eps v)) / (2 eps), in
    float64. With `refine`, Richardson's extrapolation (4 D(eps/2) - D(eps)) / 3, whose
    truncation error is O(eps^4), not O(eps^2): the checks retry with it before they fail
    (a function with large third derivatives, such as the sum of tanh of a convolution
    whose outputs reach 10-30, is off by 1e-4 relative at eps=1e-5 otherwise)."""
    def central(h):
        plus = tree_util.leaves(f(*tree_util.unflatten(treedef, _moved(leaves, vs, h))))
        minus = tree_util.leaves(f(*tree_util.unflatten(treedef, _moved(leaves, vs, -h))))
        return [(_np64(p) - _np64(m)) / (2 * h) for p, m in zip(plus, minus)]

    d = central(eps)
    if not refine:
        return d
    return [(4 * half - full) / 3 for full, half in zip(d, central(eps / 2))]


def _fname(f) -> str:
    return getattr(f, "__name__", type(f).__name__)


def _hint(eps) -> str:
    return (f"If the rule is right, try a point away from kinks and singularities, or another "
            f"eps (now {eps}); float64 arguments give the most reliable differences")


def _close(a: float, b: float, atol: float, rtol: float) -> bool:
    return abs(a - b) <= atol + rtol * max(abs(a), abs(b))


def _check_outputs(f, got, expected, atol, rtol, what: str) -> None:
    """The primal output of a transformation must equal f's own output."""
    for i, (g, e) in enumerate(zip(tree_util.leaves(got), tree_util.leaves(expected))):
        g, e = np.asarray(g), np.asarray(e)
        if g.shape != e.shape:
            diff = f"shape {g.shape} vs {e.shape}"
        elif not np.allclose(g, e, atol=atol, rtol=rtol, equal_nan=True):
            diff = f"max abs difference {np.max(np.abs(_np64(g) - _np64(e)), initial=0):.3g}"
        else:
            continue
        raise AssertionError(f"{what} check of {_fname(f)}: output leaf {i} of the transformation "
                             f"differs from the function's own output ({diff})")


def _prepare(args):
    """Args as a tuple with every leaf an Array; returns (args, leaves, treedef)."""
    if not isinstance(args, (tuple, list)):
        raise ArgumentError(f"check_grads: args must be a tuple of arguments, as in "
                            f"check_grads(f, (x,)); got {type(args).__name__}")
    args = tuple(tree_util.map(asarray, a) for a in args)
    leaves, treedef = tree_util.flatten(args)
    return args, leaves, treedef


# --- the checks ------------------------------------------------------------------------------


def check_vjp(f, args, *, atol=None, rtol=None, eps=None, seed=0, err_msg: str = "") -> None:
    """Check `f`'s reverse-mode derivative at `args` by the inner-product identity.

    Draws random directions v (like `args`) and u (like the output) and checks
    `<u, J v>`, with J v by central differences in float64, against
    `<J^T u, v>` with J^T u from `fc.vjp`. Float64 arguments give the
    tightest check.

    Args:
        f: the function; every leaf of `args` must be a float (or complex) array.
        args: a tuple of arguments (pytrees allowed).
        atol, rtol, eps: tolerances and finite-difference step; defaults by dtype
            (float64: 1e-5 each; float32: eps 1e-3, tolerances 1e-2).
        seed: seed of the random directions.
        err_msg: prefix of the failure message.

    Raises:
        AssertionError: naming both inner products, their difference and the tolerance.
    """
    rng = np.random.default_rng(seed)
    args, leaves, treedef = _prepare(args)
    eps, atol, rtol = _defaults(leaves, eps, atol, rtol)
    what = err_msg or "VJP"
    out, f_vjp = vjp(f, *args)
    _check_outputs(f, out, f(*args), atol, rtol, what)
    out_leaves, out_tree = tree_util.flatten(out)
    vs = [_random_like(rng, x) for x in leaves]
    us = [_random_like(rng, o) if is_inexact(o.dtype) else np.zeros(o.shape) for o in out_leaves]
    fd = _inner(_numerical_jvp(f, leaves, treedef, vs, eps), us)
    # JAX's convention for complex values: the VJP of conj(u), conjugated
    u_cts = [asarray(np.conj(u).astype(o.dtype)) for u, o in zip(us, out_leaves)]
    cts = [np.conj(_np64(c)) for c in tree_util.leaves(f_vjp(tree_util.unflatten(out_tree, u_cts)))]
    ad = _inner(vs, cts)
    if not _close(fd, ad, atol, rtol):  # (before failing: the refined difference)
        fd = _inner(_numerical_jvp(f, leaves, treedef, vs, eps, refine=True), us)
    if not _close(fd, ad, atol, rtol):
        raise AssertionError(
            f"{what} check of {_fname(f)} failed: <u, J v> by central differences = {fd!r}, "
            f"<J^T u, v> by vjp = {ad!r}; |difference| = {abs(fd - ad):.3g} exceeds "
            f"atol + rtol * max(|.|) = {atol + rtol * max(abs(fd), abs(ad)):.3g} "
            f"(eps={eps}, atol={atol}, rtol={rtol}, seed={seed}). {_hint(eps)}")


def check_jvp(f, args, *, atol=None, rtol=None, eps=None, seed=0, err_msg: str = "") -> None:
    """Check `f`'s forward-mode derivative at `args`: J v from `fc.jvp` against
    central differences (float64) along a random direction v.

    Arguments as `check_vjp`. Raises AssertionError naming the output leaf, the
    largest difference and where it occurs.
    """
    rng = np.random.default_rng(seed)
    args, leaves, treedef = _prepare(args)
    eps, atol, rtol = _defaults(leaves, eps, atol, rtol)
    what = err_msg or "JVP"
    vs = [_random_like(rng, x) for x in leaves]
    tangents = tree_util.unflatten(treedef, [asarray(v.astype(x.dtype)) for v, x in zip(vs, leaves)])
    out, t_out = jvp(f, args, tangents)
    _check_outputs(f, out, f(*args), atol, rtol, what)
    fd = _numerical_jvp(f, leaves, treedef, vs, eps)

    def excess(t, n):  # |difference| - tolerance, per element (positive: out of bounds)
        return np.abs(t - n) - (atol + rtol * np.maximum(np.abs(t), np.abs(n)))

    outs = [(o, _np64(t)) for o, t in zip(tree_util.leaves(out), tree_util.leaves(t_out))]
    if any(is_inexact(o.dtype) and np.any(excess(t, n) > 0) for (o, t), n in zip(outs, fd)):
        fd = _numerical_jvp(f, leaves, treedef, vs, eps, refine=True)  # (before failing)
    for i, ((o, t), n) in enumerate(zip(outs, fd)):
        if not is_inexact(o.dtype):
            continue
        over = excess(t, n)
        if np.any(over > 0):
            err = np.abs(t - n)
            k = np.unravel_index(int(np.argmax(over)), err.shape) if err.ndim else ()
            scalar = complex if t.dtype.kind == "c" else float
            raise AssertionError(
                f"{what} check of {_fname(f)} failed at output leaf {i} ({o.aval.short()}), "
                f"element {tuple(int(j) for j in k)}: J v by jvp = {scalar(t[k])!r}, "
                f"by central differences = {scalar(n[k])!r} "
                f"(max |difference| {np.max(err):.3g}; eps={eps}, atol={atol}, rtol={rtol}, "
                f"seed={seed}). {_hint(eps)}")


def check_grads(f, args, order: int = 1, modes=("rev", "fwd"), atol=None, rtol=None, eps=None,
                seed: int = 0) -> None:
    """Check the derivatives of `f` at `args` up to `order`, as `jax.test_util.check_grads`.

    Each mode checks the first derivative, then (for `order > 1`) recurses on
    the derivative function: the JVP map `(x, t) -> jvp(f, x, t)` for "fwd",
    `x -> f_vjp(f(x))` for "rev". Integer and bool leaves of `args` are held
    fixed (they have no derivative).

    Args:
        f: the function to check.
        args: a tuple of arguments (pytrees allowed).
        order: the highest derivative order to check.
        modes: any of "rev" (VJP) and "fwd" (JVP).
        atol, rtol, eps: tolerances and step (defaults by dtype, see `check_vjp`).
        seed: seed of the random directions.

    Raises:
        AssertionError: the message says which derivative failed ("VJP of JVP", ...).
    """
    if isinstance(modes, str):
        modes = (modes,)
    bad = [m for m in modes if m not in ("rev", "fwd")]
    if bad or order < 1:
        raise ArgumentError(f"check_grads: modes must be among ('rev', 'fwd') and order >= 1, "
                            f"got modes={modes!r}, order={order!r}")
    args, leaves, treedef = _prepare(args)
    diff = [is_inexact(x.dtype) for x in leaves]

    def f_inexact(*xs):
        it = iter(xs)
        merged = [next(it) if d else x for x, d in zip(leaves, diff)]
        return f(*tree_util.unflatten(treedef, merged))

    f_inexact.__name__ = _fname(f)
    xs = tuple(x for x, d in zip(leaves, diff) if d)
    eps, atol, rtol = _defaults(xs, eps, atol, rtol)
    opts = dict(atol=atol, rtol=rtol, eps=eps, seed=seed)

    def recurse(fn, fargs, k: int, msg: str):
        if "fwd" in modes:
            m = f"JVP of {msg}" if msg else "JVP"
            check_jvp(fn, fargs, err_msg=m, **opts)
            if k > 1:
                def jvp_map(primals, tangents):
                    return jvp(fn, primals, tangents)

                jvp_map.__name__ = f"jvp({_fname(fn)})"
                recurse(jvp_map, (fargs, fargs), k - 1, m)
        if "rev" in modes:
            m = f"VJP of {msg}" if msg else "VJP"
            check_vjp(fn, fargs, err_msg=m, **opts)
            if k > 1:
                def vjp_map(*a):
                    out, f_vjp = vjp(fn, *a)
                    return f_vjp(out)

                vjp_map.__name__ = f"vjp({_fname(fn)})"
                recurse(vjp_map, fargs, k - 1, m)

    recurse(f_inexact, xs, order, "")


# --- hypothesis strategies --------------------------------------------------------------------


def _hypothesis():
    try:
        import hypothesis.extra.numpy as hnp
        import hypothesis.strategies as st
    except ImportError:
        raise ImportError("fc.testing.strategies needs hypothesis: pip install hypothesis") from None
    return st, hnp


# Named domains: (low, high, min_abs). Bounds keep exp/pow finite and checks well conditioned.
_DOMAINS = {
    "real": (-10.0, 10.0, 0.0),
    "positive": (0.1, 10.0, 0.0),
    "negative": (-10.0, -0.1, 0.0),
    "nonzero": (-10.0, 10.0, 0.1),
    "unit": (-0.9, 0.9, 0.0),  # inside (-1, 1): arcsin, arctanh, log1p(-x)
}


class strategies:  # noqa: N801 - a namespace: fc.testing.strategies.arrays(...)
    """Hypothesis strategies for property tests (hypothesis is imported on first use)."""

    @staticmethod
    def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 5):
        """Shapes (tuples of ints) with `min_dims..max_dims` axes of `min_side..max_side`."""
        st, _ = _hypothesis()
        return st.lists(st.integers(min_side, max_side), min_size=min_dims,
                        max_size=max_dims).map(tuple)

    @staticmethod
    def dtypes(kinds: str = "f"):
        """funconv's dtypes of the given NumPy kinds: "f" float, "c" complex, "i" int, "b" bool."""
        st, _ = _hypothesis()
        return st.sampled_from([d for d in SUPPORTED if d.kind in kinds])

    @staticmethod
    def elements(dtype=np.float64, elements=None, *, min_abs: float | None = None):
        """Scalars of `dtype` in a domain (see `arrays`)."""
        st, _ = _hypothesis()
        dtype = np.dtype(dtype)
        if elements is not None and not isinstance(elements, (str, tuple, list)):
            return elements  # already a strategy
        if isinstance(elements, (tuple, list)):
            low, high, dom_min_abs = float(elements[0]), float(elements[1]), 0.0
        else:
            name = elements or "real"
            if name not in _DOMAINS:
                raise ArgumentError(f"strategies: unknown domain {name!r}; use one of "
                                    f"{sorted(_DOMAINS)}, a (low, high) pair or a strategy")
            low, high, dom_min_abs = _DOMAINS[name]
        min_abs = dom_min_abs if min_abs is None else float(min_abs)
        if dtype.kind == "b":
            return st.booleans()
        if dtype.kind in "iu":
            ints = st.integers(int(np.ceil(low)), int(np.floor(high)))
            return ints.filter(lambda i: abs(i) >= min_abs) if min_abs else ints
        width = 32 if dtype in (np.float32, np.complex64) else 64

        def interval(lo, hi):
            if width == 32:  # hypothesis wants bounds exactly representable at this width
                lo, hi = float(np.float32(lo)), float(np.float32(hi))
            return st.floats(lo, hi, width=width)

        if min_abs > 0:
            parts = []
            if high >= min_abs:
                parts.append(interval(max(low, min_abs), high))
            if low <= -min_abs:
                parts.append(interval(low, min(high, -min_abs)))
            if not parts:
                raise ArgumentError(f"strategies: no values in [{low}, {high}] with |x| >= {min_abs}")
            real = st.one_of(*parts)
        else:
            real = interval(low, high)
        if dtype.kind == "c":
            return st.builds(complex, real, real)
        return real

    @staticmethod
    def arrays(shape, dtype=np.float64, elements=None, *, min_abs: float | None = None):
        """funconv Arrays of `shape` and `dtype` with elements in a domain.

        Args:
            shape: a tuple, an int, or a strategy of shapes (e.g. `shapes()`).
            dtype: a dtype or a strategy of dtypes (e.g. `dtypes("fc")`); float64
                by default, the precision gradient checks want.
            elements: the domain: "real" ([-10, 10], the default), "positive"
                ([0.1, 10]), "negative", "nonzero" (|x| >= 0.1), "unit"
                ([-0.9, 0.9]); a `(low, high)` interval; or a hypothesis strategy.
            min_abs: keep every element at least this far from zero (bounded
                away from zero), in any domain.

        Returns:
            A strategy of `fc.Array`.
        """
        st, hnp = _hypothesis()
        strategies.elements(np.float64, elements, min_abs=min_abs)  # a bad domain fails here, now
        shape_st = shape if hasattr(shape, "example") else st.just(
            (shape,) if isinstance(shape, int) else tuple(shape))
        dtype_st = dtype if hasattr(dtype, "example") else st.just(np.dtype(dtype))

        def draw(shape_dtype):
            shp, dt = shape_dtype
            el = strategies.elements(dt, elements, min_abs=min_abs)
            return hnp.arrays(dt, shp, elements=el)

        return st.tuples(shape_st, dtype_st).flatmap(draw).map(asarray)

    @staticmethod
    def conv_configs(spatial_dims: int = 2, max_batch: int = 2, max_channels: int = 4,
                     max_kernel: int = 3, max_extra: int = 4, dtype=np.float64, elements=None):
        """Valid convolution problems `(x, w, kwargs)` for `fc.conv(x, w, **kwargs)`.

        Draws the batch, channels (with groups 1 or 2 where they divide), kernel
        sizes, strides and dilations (1 or 2 per dim), an input at least as large
        as the dilated kernel (plus up to `max_extra`), and a padding in every
        form conv accepts ("SAME", "VALID", an int, ints per dim, (lo, hi) pairs).

        Example::

            @given(fc.testing.strategies.conv_configs())
            def test_conv_grads(cfg):
                x, w, kw = cfg
                fc.testing.check_grads(lambda x, w: fc.conv(x, w, **kw), (x, w), modes="rev")
        """
        st, _ = _hypothesis()
        strategies.elements(np.float64, elements)  # a bad domain fails here, now

        @st.composite
        def configs(draw):
            nd = spatial_dims
            groups = draw(st.sampled_from([1, 2] if max_channels >= 2 else [1]))
            cin = groups * draw(st.integers(1, max(1, max_channels // groups)))
            cout = groups * draw(st.integers(1, max(1, max_channels // groups)))
            ks = [draw(st.integers(1, max_kernel)) for _ in range(nd)]
            dil = [draw(st.integers(1, 2)) for _ in range(nd)]
            stride = [draw(st.integers(1, 2)) for _ in range(nd)]
            sizes = [(k - 1) * d + 1 + draw(st.integers(0, max_extra)) for k, d in zip(ks, dil)]
            kind = draw(st.sampled_from(["SAME", "VALID", "int", "per_dim", "pairs"]))
            if kind in ("SAME", "VALID"):
                padding = kind
            elif kind == "int":
                padding = draw(st.integers(0, max(0, min(ks) - 1)))
            elif kind == "per_dim":
                padding = tuple(draw(st.integers(0, k - 1)) for k in ks)
            else:
                padding = tuple((draw(st.integers(0, k - 1)), draw(st.integers(0, k - 1))) for k in ks)
            n = draw(st.integers(1, max_batch))
            x = draw(strategies.arrays((n, cin, *sizes), dtype, elements))
            w = draw(strategies.arrays((cout, cin // groups, *ks), dtype, elements))
            return x, w, {"stride": tuple(stride), "padding": padding, "dilation": tuple(dil),
                          "groups": groups}

        return configs()


__all__ = ["check_vjp", "check_jvp", "check_grads", "strategies", "Array"]


def __dir__() -> list[str]:
    """`dir()` of the namespace lists its public API (`__all__`), not its imports."""
    return sorted(__all__)
