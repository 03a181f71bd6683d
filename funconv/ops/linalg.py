"""Linear algebra: the `dot_general` primitive (contracting and batch dimensions,
as in XLA/JAX) and the wrappers built on it: `matmul`, `dot`, `vdot`, `inner`,
`outer`, `tensordot`, `einsum`; plus `diagonal`, `trace`, `diag`, `tril`, `triu`.

dot_general's output lays out the batch dims, then the lhs free dims, then the
rhs free dims. Its impl is one (batched) `np.matmul` after transposes and
reshapes, so BLAS does the work.
"""

from __future__ import annotations

import builtins

import numpy as np

from funconv.array import Array
from funconv.errors import DTypeError, ShapeError
from funconv.ops._core import asarray, broadcast_shapes, broadcast_to, operand
from funconv.primitive import Primitive
from funconv.types import ArrayType


def _split_dims(ndim, contract, batch):
    return [i for i in range(ndim) if i not in contract and i not in batch]


def _dot_general_rule(x: ArrayType, y: ArrayType, *, dimension_numbers) -> ArrayType:
    (xc, yc), (xb, yb) = dimension_numbers
    if x.dtype != y.dtype:
        raise DTypeError(f"dot_general: operand dtypes differ: {x.short()}, {y.short()}")
    if len(xc) != len(yc) or len(xb) != len(yb):
        raise ShapeError(f"dot_general: unpaired dimensions {dimension_numbers} for {x.short()}, {y.short()}")
    for a, b in list(zip(xc, yc)) + list(zip(xb, yb)):
        if not (0 <= a < x.ndim and 0 <= b < y.ndim) or x.shape[a] != y.shape[b]:
            raise ShapeError(f"dot_general: dimension {a} of {x.short()} does not match dimension "
                             f"{b} of {y.short()} (dimension_numbers={dimension_numbers})")
    xf = _split_dims(x.ndim, xc, xb)
    yf = _split_dims(y.ndim, yc, yb)
    shape = tuple(x.shape[i] for i in xb) + tuple(x.shape[i] for i in xf) + tuple(y.shape[i] for i in yf)
    return ArrayType(shape, x.dtype)


def _dot_general_impl(x, y, *, dimension_numbers):
    (xc, yc), (xb, yb) = dimension_numbers
    xf = _split_dims(x.ndim, xc, xb)
    yf = _split_dims(y.ndim, yc, yb)
    size = lambda a, dims: int(np.prod([a.shape[i] for i in dims], dtype=np.int64))  # noqa: E731
    B, M, K, N = size(x, xb), size(x, xf), size(x, xc), size(y, yf)
    out_shape = tuple(x.shape[i] for i in xb) + tuple(x.shape[i] for i in xf) + tuple(y.shape[i] for i in yf)
    xt = np.transpose(x, tuple(xb) + tuple(xf) + tuple(xc))
    yt = np.transpose(y, tuple(yb) + tuple(yc) + tuple(yf))
    if B == 1:
        out = np.matmul(xt.reshape(M, K), yt.reshape(K, N))
    else:
        out = np.matmul(xt.reshape(B, M, K), yt.reshape(B, K, N))
    return out.reshape(out_shape)


def _dot_general_vjp(ct, out, x, y, *, dimension_numbers):
    from funconv.ops.shape import transpose

    (xc, yc), (xb, yb) = dimension_numbers
    xf = _split_dims(x.ndim, xc, xb)
    yf = _split_dims(y.ndim, yc, yb)
    nb = len(xb)
    ct_batch = tuple(range(nb))
    ct_xfree = tuple(range(nb, nb + len(xf)))
    ct_yfree = tuple(range(nb + len(xf), ct.ndim))

    def back(other, other_free, other_batch, other_contract, mine_batch, mine_free, mine_contract,
             ct_other_free):
        # contract ct's "other free" dims away against the other operand
        r = dot_general_p(ct, other, dimension_numbers=((ct_other_free, tuple(other_free)),
                                                        (ct_batch, tuple(other_batch))))
        order = np.argsort(other_contract)
        axes_of_r = list(mine_batch) + list(mine_free) + [mine_contract[j] for j in order]
        return transpose(r, tuple(np.argsort(axes_of_r).tolist()))

    x_ct = back(y, yf, yb, yc, xb, xf, xc, ct_yfree)
    y_ct = back(x, xf, xb, xc, yb, yf, yc, ct_xfree)
    return x_ct, y_ct


dot_general_p = Primitive("dot_general", _dot_general_rule, _dot_general_impl, _dot_general_vjp)


def dot_general(x, y, dimension_numbers) -> Array:
    """`lax.dot_general`: `dimension_numbers = ((x_contract, y_contract), (x_batch, y_batch))`."""
    from funconv.errors import ArgumentError
    from funconv.ops._core import static_ints

    x, y = _promote_dtypes("dot_general", x, y)
    try:
        (xc, yc), (xb, yb) = dimension_numbers
    except (TypeError, ValueError):
        raise ArgumentError("dot_general: dimension_numbers must be ((x_contract, y_contract), "
                            f"(x_batch, y_batch)), got {dimension_numbers!r}") from None
    dn = ((static_ints(xc, "a contracting dimension", "dot_general"),
           static_ints(yc, "a contracting dimension", "dot_general")),
          (static_ints(xb, "a batch dimension", "dot_general"),
           static_ints(yb, "a batch dimension", "dot_general")))
    return dot_general_p(x, y, dimension_numbers=dn)


def _promote_dtypes(opname, x, y):
    from funconv.ops._core import dtype_of, to_dtype
    from funconv.types import result_type

    x, y = operand(x, opname), operand(y, opname)
    x = x if isinstance(x, Array) else asarray(x)
    y = y if isinstance(y, Array) else asarray(y)
    dt = result_type(dtype_of(x), dtype_of(y))
    return to_dtype(x, dt), to_dtype(y, dt)


def matmul(x, y) -> Array:
    """`x @ y` with NumPy's rules (1-d operands, broadcast batch dimensions)."""
    from funconv.ops.shape import reshape

    x, y = _promote_dtypes("matmul", x, y)
    if x.ndim == 0 or y.ndim == 0:
        raise ShapeError(f"matmul: operands must be at least 1-d, got {x.aval.short()} @ {y.aval.short()}; "
                         "use * for scalars")
    xk = x.shape[-1]
    yk = y.shape[0] if y.ndim == 1 else y.shape[-2]
    if xk != yk:
        raise ShapeError(f"matmul: contracted dimensions differ: {x.aval.short()} @ {y.aval.short()} "
                         f"({xk} vs {yk}); transpose one operand (x.T) or check the layout")
    if y.ndim <= 2:
        # (..., m, k) @ (k, n): one big GEMM over all leading dims
        return dot_general_p(x, y, dimension_numbers=(((x.ndim - 1,), (0,)), ((), ())))
    if x.ndim == 1:
        return reshape(matmul(reshape(x, (1, xk)), y), y.shape[:-2] + (y.shape[-1],))
    batch = broadcast_shapes("matmul", x.shape[:-2], y.shape[:-2], types=[x.aval, y.aval])
    x = broadcast_to(x, batch + x.shape[-2:])
    y = broadcast_to(y, batch + y.shape[-2:])
    nb = len(batch)
    b = tuple(range(nb))
    return dot_general_p(x, y, dimension_numbers=(((nb + 1,), (nb,)), (b, b)))


def _pair_check(opname, x, y, xa, ya):
    for a, b in zip(xa, ya):
        if x.shape[a] != y.shape[b]:
            raise ShapeError(f"{opname}: axis {a} of {x.aval.short()} (size {x.shape[a]}) does not "
                             f"match axis {b} of {y.aval.short()} (size {y.shape[b]}); the "
                             "contracted axes must have equal sizes")


def dot(a, b) -> Array:
    """`np.dot`: a product of scalars, an inner product of vectors, a matrix product,
    or a sum over the last axis of `a` and the second-to-last of `b` for N-d operands."""
    from funconv.ops.elementwise import multiply

    x, y = _promote_dtypes("dot", a, b)
    if x.ndim == 0 or y.ndim == 0:
        return multiply(x, y)
    xa, ya = (x.ndim - 1,), (builtins.max(y.ndim - 2, 0),)
    _pair_check("dot", x, y, xa, ya)
    return dot_general_p(x, y, dimension_numbers=((xa, ya), ((), ())))


def vdot(a, b) -> Array:
    """`np.vdot`: the inner product of the flattened operands, conjugating the first."""
    from funconv.ops.elementwise import conj
    from funconv.ops.shape import reshape

    x, y = _promote_dtypes("vdot", a, b)
    if x.size != y.size:
        raise ShapeError(f"vdot: operands {x.aval.short()} and {y.aval.short()} have different sizes")
    return dot(conj(reshape(x, (-1,))), reshape(y, (-1,)))


def inner(a, b) -> Array:
    """`np.inner`: a sum product over the last axes of both operands."""
    from funconv.ops.elementwise import multiply

    x, y = _promote_dtypes("inner", a, b)
    if x.ndim == 0 or y.ndim == 0:
        return multiply(x, y)
    xa, ya = (x.ndim - 1,), (y.ndim - 1,)
    _pair_check("inner", x, y, xa, ya)
    return dot_general_p(x, y, dimension_numbers=((xa, ya), ((), ())))


def outer(a, b) -> Array:
    """`np.outer`: `out[i, j] = a.ravel()[i] * b.ravel()[j]`."""
    from funconv.ops.elementwise import multiply
    from funconv.ops.shape import reshape

    x, y = _promote_dtypes("outer", a, b)
    return multiply(reshape(x, (-1, 1)), reshape(y, (1, -1)))


def tensordot(a, b, axes=2) -> Array:
    """`np.tensordot`: contract the last `axes` axes of `a` with the first of `b`,
    or the axes given as a pair `(a_axes, b_axes)`."""
    from funconv.errors import ArgumentError
    from funconv.ops._core import normalize_axis

    x, y = _promote_dtypes("tensordot", a, b)
    if isinstance(axes, (int, np.integer)):
        n = int(axes)
        if n < 0 or n > x.ndim or n > y.ndim:
            raise ShapeError(f"tensordot: cannot contract {n} axes of {x.aval.short()} and "
                             f"{y.aval.short()}")
        xa, ya = tuple(range(x.ndim - n, x.ndim)), tuple(range(n))
    else:
        try:
            xa, ya = axes
        except (TypeError, ValueError):
            raise ArgumentError(f"tensordot: axes must be an int or a pair of axis sequences, got "
                                f"{axes!r}") from None
        xa = (xa,) if isinstance(xa, (int, np.integer)) else tuple(xa)
        ya = (ya,) if isinstance(ya, (int, np.integer)) else tuple(ya)
        if len(xa) != len(ya):
            raise ShapeError(f"tensordot: {len(xa)} axes of {x.aval.short()} paired with {len(ya)} "
                             f"of {y.aval.short()}; give as many axes for each")
        xa = tuple(normalize_axis(i, x.ndim, "tensordot") for i in xa)
        ya = tuple(normalize_axis(i, y.ndim, "tensordot") for i in ya)
    _pair_check("tensordot", x, y, xa, ya)
    return dot_general_p(x, y, dimension_numbers=((xa, ya), ((), ())))


# --- einsum ------------------------------------------------------------------------------------
# Labels are letters, or ("...", j) for the j-th ellipsis dimension counted from the right, so
# ellipses of different lengths broadcast like NumPy.


def _einsum_terms(subscripts: str, operands) -> tuple[list[list], list]:
    from funconv.errors import ArgumentError

    spec = subscripts.replace(" ", "")
    if "->" in spec:
        lhs, rhs = spec.split("->")
    else:
        lhs, rhs = spec, None
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ArgumentError(f"einsum: {subscripts!r} names {len(terms)} operand(s), "
                            f"{len(operands)} were given")
    labels = []
    for term, x in zip(terms, operands):
        if "..." in term:
            head, tail = term.split("...")
            n_ell = x.ndim - len(head) - len(tail)
            if n_ell < 0:
                raise ShapeError(f"einsum: {term!r} has more indices than {x.aval.short()} has axes")
            lab = list(head) + [("...", n_ell - 1 - i) for i in range(n_ell)] + list(tail)
        else:
            lab = list(term)
            if len(lab) != x.ndim:
                raise ShapeError(f"einsum: {term!r} has {len(lab)} indices but operand "
                                 f"{x.aval.short()} has {x.ndim} axes")
        if any(isinstance(c, str) and not c.isalpha() for c in lab):
            raise ArgumentError(f"einsum: bad subscripts {subscripts!r}; use letters, ',', '->' and '...'")
        labels.append(lab)
    n_ell_max = builtins.max([builtins.sum(isinstance(c, tuple) for c in lab) for lab in labels] + [0])
    ell = [("...", j) for j in range(n_ell_max - 1, -1, -1)]
    if rhs is None:
        counts: dict = {}
        for lab in labels:
            for c in lab:
                counts[c] = counts.get(c, 0) + 1
        out = ell + sorted(c for c, k in counts.items() if isinstance(c, str) and k == 1)
    else:
        if "..." in rhs:
            head, tail = rhs.split("...")
            out = list(head) + ell + list(tail)
        else:
            out = list(rhs)
        present = {c for lab in labels for c in lab}
        for c in out:
            if c not in present:
                raise ArgumentError(f"einsum: output index {c!r} of {subscripts!r} appears in no input")
        if len(set(out)) != len(out):
            raise ArgumentError(f"einsum: repeated output index in {subscripts!r}")
    return labels, out


def _einsum_diagonal(x, lab):
    """Take diagonals until no label repeats within the operand."""
    from funconv.ops.indexing import getitem
    from funconv.ops.shape import transpose

    while len(set(lab)) != len(lab):
        c = next(c for c in lab if lab.count(c) > 1)
        i = lab.index(c)
        j = lab.index(c, i + 1)
        if x.shape[i] != x.shape[j]:
            raise ShapeError(f"einsum: index {c!r} repeats with sizes {x.shape[i]} and {x.shape[j]}")
        rest = [k for k in range(x.ndim) if k not in (i, j)]
        x = transpose(x, (i, j) + tuple(rest))
        ar = np.arange(x.shape[0])
        x = getitem(x, (ar, ar))
        lab = [c] + [lab[k] for k in rest]
    return x, lab


def _einsum_sum_unneeded(x, lab, keep):
    from funconv.ops.reduce import sum as _sum

    axes = tuple(i for i, c in enumerate(lab) if c not in keep)
    if axes:
        x = _sum(x, axis=axes)
        lab = [c for c in lab if c in keep]
    return x, lab


def einsum(subscripts: str, *operands, optimize=None) -> Array:
    """`np.einsum` for explicit (`"ij,jk->ik"`) and implicit (`"ij,jk"`) subscripts,
    with `...`, repeated indices (diagonals, traces) and any number of operands.

    Operands are contracted left to right; each pairwise contraction is one
    `dot_general` (shared indices kept in the output become batch dimensions).
    `optimize` is accepted for NumPy compatibility and ignored.
    """
    from funconv.errors import ArgumentError
    from funconv.ops._core import dtype_of, to_dtype
    from funconv.ops.shape import transpose
    from funconv.types import result_type

    if not isinstance(subscripts, str):
        raise ArgumentError(f"einsum: the first argument must be a subscripts string, got "
                            f"{type(subscripts).__name__}")
    if not operands:
        raise ArgumentError("einsum: needs at least one operand")
    xs = [operand(o, "einsum") for o in operands]
    dt = result_type(*[dtype_of(o) for o in xs])
    xs = [to_dtype(o if isinstance(o, Array) else asarray(o), dt) for o in xs]
    labels, out = _einsum_terms(subscripts, xs)
    # sizes per label, broadcasting size-1 axes as NumPy does
    sizes: dict = {}
    for x, lab in zip(xs, labels):
        for c, n in zip(lab, x.shape):
            if sizes.get(c, 1) != 1 and n != 1 and sizes[c] != n:
                raise ShapeError(f"einsum: index {c if isinstance(c, str) else '...'!r} has sizes "
                                 f"{sizes[c]} and {n} in {subscripts!r} "
                                 f"({', '.join(o.aval.short() for o in xs)})")
            sizes[c] = builtins.max(sizes.get(c, 1), n)
    ops = []
    for x, lab in zip(xs, labels):
        want = tuple(sizes[c] for c in lab)
        if x.shape != want:
            x = broadcast_to(x, want)
        ops.append(_einsum_diagonal(x, list(lab)))
    acc, acc_lab = None, None
    for k, (x, lab) in enumerate(ops):
        later = {c for _, lb in ops[k + 1:] for c in lb} | set(out)
        if acc is None:
            acc, acc_lab = _einsum_sum_unneeded(x, lab, later)
            continue
        acc, acc_lab = _einsum_sum_unneeded(acc, acc_lab, later | set(lab))
        x, lab = _einsum_sum_unneeded(x, lab, later | set(acc_lab))
        shared = [c for c in acc_lab if c in lab]
        batch = [c for c in shared if c in later]
        contract = [c for c in shared if c not in later]
        dn = ((tuple(acc_lab.index(c) for c in contract), tuple(lab.index(c) for c in contract)),
              (tuple(acc_lab.index(c) for c in batch), tuple(lab.index(c) for c in batch)))
        acc = dot_general_p(acc, x, dimension_numbers=dn)
        acc_lab = batch + [c for c in acc_lab if c not in shared] + [c for c in lab if c not in shared]
    acc, acc_lab = _einsum_sum_unneeded(acc, acc_lab, set(out))
    perm = tuple(acc_lab.index(c) for c in out)
    return transpose(acc, perm)


# --- diagonals and triangles ----------------------------------------------------------------------


def _diag_positions(n: int, m: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    if offset >= 0:
        i = np.arange(builtins.max(0, builtins.min(n, m - offset)))
        return i, i + offset
    i = np.arange(builtins.max(0, builtins.min(n + offset, m)))
    return i - offset, i


def diagonal(x, offset=0, axis1=0, axis2=1) -> Array:
    """`np.diagonal`: the diagonal of the (axis1, axis2) planes, as a new last axis."""
    from funconv.errors import AxisError
    from funconv.ops._core import normalize_axis, static_int
    from funconv.ops.indexing import getitem
    from funconv.ops.shape import moveaxis

    x = operand(x, "diagonal")
    x = x if isinstance(x, Array) else asarray(x)
    if x.ndim < 2:
        raise ShapeError(f"diagonal: needs at least 2 dimensions, got {x.aval.short()}")
    a = normalize_axis(axis1, x.ndim, "diagonal")
    b = normalize_axis(axis2, x.ndim, "diagonal")
    if a == b:
        raise AxisError(f"diagonal: axis1 and axis2 are the same axis ({axis1}, {axis2})")
    y = moveaxis(x, (a, b), (-2, -1))
    rows, cols = _diag_positions(y.shape[-2], y.shape[-1], static_int(offset, "offset", "diagonal"))
    return getitem(y, (Ellipsis, rows, cols))


def trace(x, offset=0, axis1=0, axis2=1) -> Array:
    """`np.trace`: the sum along a diagonal."""
    from funconv.ops.reduce import sum as _sum

    return _sum(diagonal(x, offset, axis1, axis2), axis=-1)


def diag(v, k=0) -> Array:
    """`np.diag`: a 2-d array with `v` on its k-th diagonal (1-d `v`), or the k-th diagonal
    of a 2-d `v`."""
    from funconv.ops.creation import zeros

    v = operand(v, "diag")
    v = v if isinstance(v, Array) else asarray(v)
    if v.ndim == 2:
        return diagonal(v, k)
    if v.ndim != 1:
        raise ShapeError(f"diag: expected a 1-d or 2-d array, got {v.aval.short()}")
    from funconv.ops._core import static_int

    k = static_int(k, "k", "diag")
    n = v.shape[0] + builtins.abs(k)
    rows, cols = _diag_positions(n, n, k)
    return zeros((n, n), v.dtype).at[rows, cols].set(v)


def _triangle(x, k, lower: bool, opname: str) -> Array:
    from funconv.ops.elementwise import where

    x = operand(x, opname)
    x = x if isinstance(x, Array) else asarray(x)
    if x.ndim < 2:
        raise ShapeError(f"{opname}: needs at least 2 dimensions, got {x.aval.short()}")
    from funconv.ops._core import static_int

    k = static_int(k, "k", opname)
    n, m = x.shape[-2:]
    mask = np.tri(n, m, k, dtype=bool) if lower else ~np.tri(n, m, k - 1, dtype=bool)
    return where(mask, x, 0)


def tril(x, k=0) -> Array:
    """`np.tril`: zero the elements above the k-th diagonal (of the last two axes)."""
    return _triangle(x, k, True, "tril")


def triu(x, k=0) -> Array:
    """`np.triu`: zero the elements below the k-th diagonal (of the last two axes)."""
    return _triangle(x, k, False, "triu")


__all__ = ["dot_general", "matmul", "dot", "vdot", "inner", "outer", "tensordot", "einsum",
           "diagonal", "trace", "diag", "tril", "triu"]
