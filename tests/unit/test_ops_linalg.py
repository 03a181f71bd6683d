"""Linear algebra wrappers against NumPy: matmul (1-d and batch broadcasting), dot, vdot,
inner, outer, tensordot, einsum; dtypes; gradients."""

from __future__ import annotations

import numpy as np
import pytest

import funconv as fc
from funconv.errors import ArgumentError, ShapeError
from funconv.testing import check_grads

RNG = np.random.default_rng(0)


def r(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def close(got, want):
    got = np.asarray(got)
    assert got.shape == np.shape(want), (got.shape, np.shape(want))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


MATMUL = [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((5, 2, 3), (3, 4)),
          ((5, 2, 3), (5, 3, 4)), ((1, 2, 3), (5, 3, 4)), ((3,), (5, 3, 4)), ((5, 2, 3), (3,)),
          ((2, 1, 2, 3), (4, 3, 2)), ((2, 3), (6, 3, 4)), ((4, 1, 2, 3), (1, 5, 3, 2))]


@pytest.mark.parametrize("xs, ys", MATMUL)
def test_matmul_matches_numpy(xs, ys):
    a, b = r(*xs), r(*ys)
    close(fc.matmul(a, b), np.matmul(a, b))
    close(fc.asarray(a) @ b, a @ b)
    close(a @ fc.asarray(b), a @ b)


@pytest.mark.parametrize("xs, ys", MATMUL)
def test_matmul_gradients(xs, ys):
    a, b = r(*xs, dtype=np.float64), r(*ys, dtype=np.float64)
    check_grads(fc.matmul, (a, b), order=2)


DOT = [((), (3,)), ((3,), (3,)), ((2, 3), (3, 4)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 5, 3), (3,)),
       ((2, 5, 3), (4, 3, 6)), ((2, 3), (1, 3, 2))]


@pytest.mark.parametrize("xs, ys", DOT)
def test_dot_inner_match_numpy(xs, ys):
    a, b = r(*xs), r(*ys)
    close(fc.dot(a, b), np.dot(a, b))
    close(fc.asarray(a).dot(b), np.dot(a, b))
    bi = r(*(ys[:-2] + ys[-1:] + ys[-2:-1])) if len(ys) >= 2 else b
    close(fc.inner(a, bi), np.inner(a, bi))
    check_grads(fc.dot, (a.astype(np.float64), b.astype(np.float64)))


def test_vdot_outer():
    a, b = r(2, 3), r(6)
    close(fc.vdot(a, b), np.vdot(a, b))
    z = (r(3) + 1j * r(3)).astype(np.complex64)
    w = (r(3) + 1j * r(3)).astype(np.complex64)
    close(fc.vdot(z, w), np.vdot(z, w))
    close(fc.outer(a, b), np.outer(a, b))
    check_grads(fc.outer, (r(3, dtype=np.float64), r(2, dtype=np.float64)))


@pytest.mark.parametrize("xs, ys, axes", [((2, 3, 4), (3, 4, 5), 2), ((2, 3), (3, 4), 1), ((2, 3), (4, 5), 0),
                                          ((2, 3, 4), (4, 2, 6), ([0, 2], [1, 0])), ((3, 4), (4, 3), (1, 0)),
                                          ((2, 3, 4), (3, 4), ([-2, -1], [0, 1]))])
def test_tensordot(xs, ys, axes):
    a, b = r(*xs), r(*ys)
    close(fc.tensordot(a, b, axes), np.tensordot(a, b, axes))
    check_grads(lambda p, q: fc.tensordot(p, q, axes), (a.astype(np.float64), b.astype(np.float64)), order=2)


EINSUM = [("ij,jk->ik", [(3, 4), (4, 5)]), ("ij,jk", [(3, 4), (4, 5)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
          ("ii->", [(4, 4)]), ("ii", [(4, 4)]), ("ii->i", [(4, 4)]), ("ij->ji", [(3, 4)]), ("ij->", [(3, 4)]),
          ("ij->j", [(3, 4)]), ("ij,ij->i", [(3, 4), (3, 4)]), ("i,j->ij", [(3,), (4,)]), ("i,i", [(3,), (3,)]),
          ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)]), ("...ij,jk", [(2, 3, 4), (4, 5)]),
          ("ij,kj->ik", [(3, 4), (5, 4)]), ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
          ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]), ("iij->j", [(3, 3, 2)]), ("ab,cd->abcd", [(2, 3), (4, 5)]),
          ("i...,i...->...", [(3, 2, 1), (3, 1, 4)]), ("ji", [(3, 4)]), ("ij,j->i", [(3, 4), (4,)])]


@pytest.mark.parametrize("spec, shapes", EINSUM)
def test_einsum_matches_numpy(spec, shapes):
    ops = [r(*s) for s in shapes]
    close(fc.einsum(spec, *ops), np.einsum(spec, *ops))


@pytest.mark.parametrize("spec, shapes", EINSUM[:12])
def test_einsum_gradients(spec, shapes):
    ops = [r(*s, dtype=np.float64) for s in shapes]
    check_grads(lambda *o: fc.einsum(spec, *o), ops, order=2)


def test_einsum_maps_two_operand_forms_to_one_dot_general():
    g = fc.make_graph(lambda a, b: fc.einsum("bij,bjk->bik", a, b))(r(2, 3, 4), r(2, 4, 5))
    assert [n.prim.name for n in g.applies()].count("dot_general") == 1


def test_dtypes():
    i = np.arange(6, dtype=np.int32).reshape(2, 3)
    assert fc.matmul(i, i.T).dtype == np.int32
    np.testing.assert_array_equal(np.asarray(fc.matmul(i, i.T)), i @ i.T)
    assert fc.matmul(i, r(3, 2)).dtype == np.float32
    assert fc.dot(r(3, dtype=np.float64), r(3)).dtype == np.float64
    assert fc.einsum("ij,jk", i, r(3, 2)).dtype == np.float32


def test_errors_name_op_and_types():
    with pytest.raises(ShapeError, match=r"matmul.*f32\[2,3\].*f32\[4,5\]"):
        fc.matmul(r(2, 3), r(4, 5))
    with pytest.raises(ShapeError, match="matmul"):
        fc.matmul(r(3), 2.0)
    with pytest.raises(ShapeError, match=r"matmul.*broadcast"):
        fc.matmul(r(2, 2, 3), r(3, 3, 4))
    with pytest.raises(ShapeError, match=r"dot.*f32\[2,3\].*f32\[4\]"):
        fc.dot(r(2, 3), r(4))
    with pytest.raises(ShapeError, match="tensordot"):
        fc.tensordot(r(2, 3), r(2, 3), 1)
    with pytest.raises(ShapeError, match="einsum"):
        fc.einsum("ij,jk", r(2, 3), r(4, 5))
    with pytest.raises(ShapeError, match="einsum"):
        fc.einsum("ijk", r(2, 3))
    with pytest.raises(ArgumentError, match="einsum"):
        fc.einsum("ij,jk", r(2, 3))
    with pytest.raises(ArgumentError, match="einsum"):
        fc.einsum("ij->ik", r(2, 3))
    with pytest.raises(ArgumentError):
        fc.matmul("abc", r(3))


@pytest.mark.parametrize("offset", [0, 1, -1, 3, -4])
@pytest.mark.parametrize("axes", [(0, 1), (1, 2), (2, 0), (-1, -2)])
def test_diagonal_trace(offset, axes):
    x = r(3, 4, 5)
    close(fc.diagonal(x, offset, *axes), np.diagonal(x, offset, *axes))
    close(fc.trace(x, offset, *axes), np.trace(x, offset, *axes))


@pytest.mark.parametrize("k", [0, 2, -1])
def test_diag_tril_triu(k):
    v, m = r(3), r(2, 4, 5)
    close(fc.diag(v, k), np.diag(v, k))
    close(fc.diag(m[0], k), np.diag(m[0], k))
    close(fc.tril(m, k), np.tril(m, k))
    close(fc.triu(m, k), np.triu(m, k))
    check_grads(lambda a: fc.diag(a, k) * 2 + fc.trace(fc.outer(a, a)), (v.astype(np.float64),), order=2)
    check_grads(lambda a: fc.tril(a, k) * fc.triu(a, k), (m.astype(np.float64),), order=2)
