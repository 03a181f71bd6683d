"""Error messages of the ops: bad input raises a funconv error (also the matching built-in)
at the user's line, naming the op, the operand types in short form and a fix; never a bare
NumPy traceback."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import funconv as fc
from funconv.errors import (ArgumentError, AxisError, DTypeError, FuncConvError, IndexingError,
                            ShapeError)

X = fc.ones((2, 3))


def test_shape_mismatch_names_op_and_both_types():
    with pytest.raises(ShapeError) as e:
        fc.ones((16, 3)) + fc.ones((4, 3))
    msg = str(e.value)
    assert "add" in msg and "f32[16,3]" in msg and "f32[4,3]" in msg
    assert "broadcast" in msg  # the fix
    assert "test_errors_ops.py" in msg  # the user's line
    assert isinstance(e.value, ValueError)
    with pytest.raises(ShapeError, match=r"matmul.*f32\[2,3\] @ f32\[2,3\]"):
        X @ X
    with pytest.raises(ShapeError, match=r"where.*"):
        fc.where(np.ones(4, bool), X, 0.0)


def test_string_where_an_array_belongs():
    with pytest.raises(ArgumentError, match=r"add: expected an array or a number, got str 'abc'") as e:
        X + "abc"
    assert isinstance(e.value, TypeError)
    with pytest.raises(ArgumentError, match="exp"):
        fc.exp("x")
    with pytest.raises(ArgumentError, match="sum"):
        fc.sum("x")
    with pytest.raises(ArgumentError, match="matmul"):
        fc.matmul(X, "x")
    with pytest.raises(ArgumentError, match="cannot make an array"):
        fc.asarray({"a": 1})


def test_out_of_range_axis():
    with pytest.raises(AxisError, match=r"sum: axis 2 is out of range for an array of rank 2") as e:
        fc.sum(X, axis=2)
    assert isinstance(e.value, ValueError) and isinstance(e.value, IndexError)
    with pytest.raises(AxisError, match="concatenate"):
        fc.concatenate([X, X], axis=-3)
    with pytest.raises(AxisError, match="mean"):
        fc.mean(X, axis=(0, 5))
    with pytest.raises(ArgumentError, match="axis must be None, an int or a tuple of ints, got str"):
        fc.max(X, axis="0")


def test_non_integer_index_array():
    with pytest.raises(IndexingError, match=r"integers.*f32\[2\].*f32\[2,3\]") as e:
        X[fc.array([0.0, 1.0])]
    assert isinstance(e.value, IndexError)
    with pytest.raises(IndexingError, match="integers"):
        X[[0.5]]
    with pytest.raises(IndexingError, match="out of bounds for axis 1 with size 3"):
        X[0, 3]


def test_setitem_points_to_at():
    with pytest.raises(TypeError, match=r"x\.at\[idx\]\.set"):
        X[0] = 1


BAD_CALLS = [
    lambda: fc.reshape(X, "ab"), lambda: fc.reshape(X, (4, 2)), lambda: fc.transpose(X, (0, 0)),
    lambda: fc.transpose(X, (0, 2)), lambda: fc.pad(X, "a"), lambda: fc.pad(X, ((1, 1),) * 3),
    lambda: fc.concatenate("ab"), lambda: fc.concatenate([]), lambda: fc.stack([X, fc.ones(3)]),
    lambda: fc.split(X, "a"), lambda: fc.split(X, 0), lambda: fc.take(X, "a"), lambda: fc.take(X, [9]),
    lambda: fc.einsum(3, X), lambda: fc.einsum("ij,jk->ik", X, fc.ones((4, 2))), lambda: fc.tile(X, (-1,)),
    lambda: fc.repeat(X, [1, 2], axis=1), lambda: fc.where("a", 1, 2), lambda: fc.clip("a", 0, 1),
    lambda: fc.matmul(X, object()), lambda: fc.array(object()), lambda: fc.moveaxis(X, 5, 0),
    lambda: fc.expand_dims(X, 5), lambda: fc.squeeze(X, 0), lambda: fc.roll(X, 1, 9), lambda: fc.stack([]),
    lambda: fc.swapaxes(X, 0, 2), lambda: fc.broadcast_to(X, (3, 3)), lambda: fc.dot(X, fc.ones(2)),
    lambda: fc.tensordot(X, X, axes="a"), lambda: fc.take_along_axis(X, fc.ones(2, fc.int32), 0),
    lambda: fc.argmax(X, axis=3), lambda: fc.cumsum(X, axis=2), lambda: fc.var(X, axis=4),
    lambda: X.at[5].set(0.0), lambda: X.at[0].add(fc.ones(4)), lambda: X[..., ...], lambda: X[0, 0, 0],
    lambda: X[np.ones((3, 3), bool)], lambda: fc.ones(2) & fc.ones(2), lambda: fc.floor_divide(1j, X),
    lambda: fc.logsumexp(X, axis=7), lambda: fc.prod(X, axis=2), lambda: fc.outer(X, "a"),
    lambda: fc.vdot(X, fc.ones(5)), lambda: fc.inner(X, fc.ones(2)), lambda: fc.flip(X, 2),
    lambda: fc.array_split(X, -1), lambda: fc.zeros((-1, 2)), lambda: fc.full("ab", 1.0),
    lambda: fc.astype(X, "not a dtype"), lambda: fc.power(X, "a"), lambda: fc.sum(X, axis=(0, 0)),
    lambda: fc.broadcast_to(X, "ab"), lambda: fc.broadcast_to(X, (2, "x")), lambda: fc.sort(X, axis=2),
    lambda: fc.argsort(fc.ones((2,), fc.complex64)), lambda: fc.diagonal(fc.ones(3)), lambda: fc.diff(X, -1),
    lambda: fc.nonzero(fc.array(1.0)), lambda: fc.tril(fc.ones(3)), lambda: fc.diag(fc.ones((2, 2, 2))),
]


@pytest.mark.parametrize("call", BAD_CALLS, ids=range(len(BAD_CALLS)))
def test_bad_input_raises_a_funconv_error(call):
    with pytest.raises(FuncConvError) as e:
        call()
    # and the error names where the user called from
    assert "test_errors_ops.py" in str(e.value)


def test_traced_errors_are_raised_at_trace_time():
    with pytest.raises(ShapeError, match=r"f32\[2,3\].*f32\[4\]"):
        fc.make_graph(lambda a, b: a * b)(X, fc.ones(4))
    with pytest.raises(DTypeError):
        fc.make_graph(lambda a: a[0] & a[1])(X)


# --- a sweep: every exported op, each of its first positional arguments replaced by junk ---------

_JUNK = ["str", None, object(), {"a": 1}, 3.5, -7, (1, "a"), [[1], [2, 3]]]
_FILL = {"subscripts": "ij->ji", "shape": (2, 3), "dtype": np.float32, "mode": "set", "arrays": [X, X],
         "N": 3, "size": 3, "num": 3, "n": 3}


def _sweep_cases():
    for name in fc.ops.__all__:
        f = getattr(fc.ops, name)
        try:
            params = [p for p in inspect.signature(f).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        except (TypeError, ValueError):
            continue
        for i, p in enumerate(params[:4]):
            yield pytest.param(f, params, i, id=f"{name}-{p.name}")


@pytest.mark.parametrize("f, params, i", list(_sweep_cases()))
def test_junk_arguments_raise_funconv_errors(f, params, i):
    """No junk argument gets through to a bare NumPy/Python error."""
    for junk in _JUNK:
        args = []
        for j, q in enumerate(params):
            if j == i:
                args.append(junk)
            elif q.default is inspect.Parameter.empty:
                args.append(_FILL.get(q.name, X))
            else:
                break
        try:
            f(*args)
        except (FuncConvError, NotImplementedError):
            pass
        except Exception as e:  # pragma: no cover - the failure message is the point
            raise AssertionError(f"{f.__name__}({params[i].name}={junk!r}) raised a bare "
                                 f"{type(e).__name__}: {e}") from e
