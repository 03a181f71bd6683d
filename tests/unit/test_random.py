"""fc.random: Threefry known answers, reproducibility, independence after split,
moments of the samplers, and a snapshot of the bits so accidental changes show."""

import numpy as np
import pytest

import funconv as fc
from funconv.errors import ArgumentError, DTypeError, ShapeError
from funconv.random import threefry2x32


def _np(x):
    return np.asarray(x)


def _children(key, num=2):
    """Child keys of split as separate Arrays (without relying on indexing)."""
    ks = _np(fc.random.split(key, num))
    return [fc.asarray(k) for k in ks]


# --- the block cipher --------------------------------------------------------------


@pytest.mark.parametrize("key, ctr, expected", [
    # Random123's known-answer vectors for threefry2x32 with 20 rounds (kat_vectors)
    ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
])
def test_threefry_known_answers(key, ctr, expected):
    y0, y1 = threefry2x32(key, np.uint32(ctr[0]), np.uint32(ctr[1]))
    assert (int(y0), int(y1)) == expected


def test_threefry_vectorised_equals_scalar():
    x0 = np.arange(5, dtype=np.uint32)
    x1 = np.arange(5, 10, dtype=np.uint32)
    y0, y1 = threefry2x32((7, 9), x0, x1)
    for i in range(5):
        s0, s1 = threefry2x32((7, 9), x0[i], x1[i])
        assert (y0[i], y1[i]) == (s0, s1)


# --- keys ------------------------------------------------------------------------


def test_key_layout():
    assert _np(fc.random.key(0)).tolist() == [0, 0]
    assert _np(fc.random.key(1)).tolist() == [0, 1]
    k = fc.random.key(2 ** 32 + 5)
    assert k.dtype == np.int32 and _np(k).tolist() == [1, 5]
    # words >= 2**31 are stored as int32 bit patterns
    assert _np(fc.random.key(2 ** 32 - 1)).tolist() == [0, -1]
    assert _np(fc.random.key(-1)).tolist() == [-1, -1]


def test_key_rejects_bad_seeds_and_keys():
    with pytest.raises(ArgumentError, match="integer"):
        fc.random.key(1.5)
    with pytest.raises(ArgumentError, match="key"):
        fc.random.normal(fc.zeros(3), (2,))
    with pytest.raises(ArgumentError, match="key"):
        fc.random.uniform("seed", (2,))
    with pytest.raises(DTypeError):
        fc.random.uniform(fc.random.key(0), (2,), dtype=fc.int32)


def test_numpy_uint32_keys_are_accepted():
    k = np.array([0, 0xFFFFFFFF], dtype=np.uint32)
    a = fc.random.uniform(k, (4,))
    b = fc.random.uniform(fc.random.key(0xFFFFFFFF), (4,))
    np.testing.assert_array_equal(_np(a), _np(b))


# --- reproducibility and the bits snapshot ------------------------------------------


def test_same_key_same_numbers():
    k = fc.random.key(42)
    for f in (fc.random.normal, fc.random.uniform, fc.random.bits):
        np.testing.assert_array_equal(_np(f(k, (7, 3))), _np(f(fc.random.key(42), (7, 3))))


def test_bits_snapshot():
    """The first numbers for key(0). A change here changes every user's results:
    only update these on purpose, and say so in the changelog."""
    k = fc.random.key(0)
    assert _np(fc.random.bits(k, (4,))).tolist() == [
        int(np.uint32(v).view(np.int32)) for v in
        (threefry2x32((0, 0), 0, 0)[0], threefry2x32((0, 0), 0, 0)[1],
         threefry2x32((0, 0), 0, 1)[0], threefry2x32((0, 0), 0, 1)[1])]
    assert _np(fc.random.bits(k, (4,))).tolist() == [1797259609, -1715843330, 928981903, -841280227]
    np.testing.assert_allclose(_np(fc.random.uniform(k, (3,))),
                               [0.4184571, 0.60049903, 0.21629542], rtol=0, atol=1e-7)
    np.testing.assert_allclose(_np(fc.random.normal(k, (3,))),
                               [-0.20584211, 0.2546391, -0.7847658], rtol=1e-6)
    assert _np(fc.random.split(k)).tolist() == [[1829400328, 293482607], [1481517927, 1506781092]]
    assert _np(fc.random.fold_in(k, 3)).tolist() == [474806741, -1214358414]


def test_bits_are_prefix_stable():
    k = fc.random.key(3)
    long = _np(fc.random.bits(k, (11,)))
    np.testing.assert_array_equal(_np(fc.random.bits(k, (5,))), long[:5])
    np.testing.assert_array_equal(_np(fc.random.uniform(k, (2, 3))).ravel(),
                                  _np(fc.random.uniform(k, (6,))))


def test_uniform_is_the_top_bits():
    k = fc.random.key(9)
    b = _np(fc.random.bits(k, (100,))).view(np.uint32)
    u = _np(fc.random.uniform(k, (100,)))
    np.testing.assert_array_equal(u, (b >> 8).astype(np.float32) * np.float32(2 ** -24))


# --- split and fold_in --------------------------------------------------------------


def test_split_shapes_and_distinct_children():
    k = fc.random.key(0)
    ks = fc.random.split(k, 5)
    assert ks.shape == (5, 2) and ks.dtype == np.int32
    rows = {tuple(r) for r in _np(ks).tolist()}
    assert len(rows) == 5 and (0, 0) not in rows
    # prefix-stable: the first children do not depend on num
    np.testing.assert_array_equal(_np(fc.random.split(k, 2)), _np(ks)[:2])


def test_split_children_are_independent():
    """Streams of the two children and of the parent are uncorrelated, and the
    sign agreement of their draws is what independent fair coins give."""
    n = 20000
    k = fc.random.key(123)
    k1, k2 = _children(k)
    a = _np(fc.random.normal(k1, (n,)))
    b = _np(fc.random.normal(k2, (n,)))
    c = _np(fc.random.normal(k, (n,)))
    bound = 4 / np.sqrt(n)  # 4 standard errors of a correlation of independent samples
    for x, y in [(a, b), (a, c), (b, c)]:
        assert abs(np.corrcoef(x, y)[0, 1]) < bound
        agree = np.mean(np.sign(x) == np.sign(y))
        assert abs(agree - 0.5) < 4 * 0.5 / np.sqrt(n)


def test_fold_in_distinct_and_deterministic():
    k = fc.random.key(0)
    outs = [tuple(_np(fc.random.fold_in(k, i)).tolist()) for i in range(20)]
    assert len(set(outs)) == 20
    assert outs[3] == tuple(_np(fc.random.fold_in(k, 3)).tolist())
    assert outs[3] == tuple(_np(fc.random.fold_in(k, fc.array(3))).tolist())
    # fold_in and split use different streams
    assert tuple(_np(fc.random.split(k, 1))[0].tolist()) != outs[0]


# --- samplers: moments and ranges -----------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uniform_moments_and_range(dtype):
    n = 50000
    u = _np(fc.random.uniform(fc.random.key(1), (n,), dtype=dtype, minval=-2.0, maxval=3.0))
    assert u.dtype == dtype and u.shape == (n,)
    assert u.min() >= -2 and u.max() < 3
    # mean 0.5, variance 25/12; tolerances of 5 standard errors
    assert abs(u.mean() - 0.5) < 5 * np.sqrt(25 / 12 / n)
    assert abs(u.var() - 25 / 12) < 0.05 * 25 / 12
    assert abs(np.mean(u < 0.5) - 0.5) < 5 * 0.5 / np.sqrt(n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normal_moments(dtype):
    n = 100000
    z = _np(fc.random.normal(fc.random.key(2), (n,), dtype=dtype))
    assert z.dtype == dtype and np.all(np.isfinite(z))
    se = 1 / np.sqrt(n)
    assert abs(z.mean()) < 5 * se
    assert abs(z.var() - 1) < 5 * np.sqrt(2) * se
    assert abs(np.mean(z ** 3)) < 5 * np.sqrt(15) * se  # skewness
    assert abs(np.mean(z ** 4) - 3) < 5 * np.sqrt(96) * se  # kurtosis
    # the normal CDF at a few points (Kolmogorov-style)
    for x, cdf in [(-1.0, 0.15865525), (0.0, 0.5), (1.96, 0.9750021)]:
        assert abs(np.mean(z < x) - cdf) < 5 * 0.5 * se


def test_truncated_normal_bounds():
    z = _np(fc.random.truncated_normal(fc.random.key(0), -2.0, 2.0, (20000,)))
    assert z.min() > -2 and z.max() < 2
    assert abs(z.mean()) < 0.05


def test_bernoulli():
    n = 40000
    b = _np(fc.random.bernoulli(fc.random.key(4), 0.3, (n,)))
    assert b.dtype == np.bool_
    assert abs(b.mean() - 0.3) < 5 * np.sqrt(0.21 / n)
    p = fc.array([0.0, 1.0])
    assert _np(fc.random.bernoulli(fc.random.key(4), p)).tolist() == [False, True]


def test_randint():
    n = 30000
    r = _np(fc.random.randint(fc.random.key(5), (n,), -3, 7))
    assert r.dtype == np.int32 and r.min() == -3 and r.max() == 6
    counts = np.bincount(r + 3, minlength=10)
    expected = n / 10
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 40  # 9 degrees of freedom: P(chi2 > 40) < 1e-5
    r64 = fc.random.randint(fc.random.key(5), (4,), 0, 2 ** 40, dtype=fc.int64)
    assert r64.dtype == np.int64 and np.all((_np(r64) >= 0) & (_np(r64) < 2 ** 40))


def test_permutation():
    p = _np(fc.random.permutation(fc.random.key(6), 50))
    assert sorted(p.tolist()) == list(range(50))
    assert p.tolist() != list(range(50))
    q = _np(fc.random.permutation(fc.random.key(7), 50))
    assert p.tolist() != q.tolist()


def test_choice_with_probabilities():
    n = 20000
    c = _np(fc.random.choice(fc.random.key(8), 3, (n,), p=fc.array([0.2, 0.0, 0.8])))
    assert set(np.unique(c).tolist()) <= {0, 2}
    assert abs(np.mean(c == 0) - 0.2) < 5 * np.sqrt(0.16 / n)


def test_choice_int_with_replacement():
    c = _np(fc.random.choice(fc.random.key(8), 4, (1000,)))
    assert set(np.unique(c).tolist()) == {0, 1, 2, 3}


# --- under transformations ------------------------------------------------------------


def test_samplers_trace_with_a_traced_key():
    """The key may be a traced argument: the graph draws from whatever key it gets."""
    from funconv.backends.interpreter import evaluate

    def f(k, x):
        return fc.random.normal(k, x.shape) + fc.random.uniform(k, x.shape) * x

    g = fc.make_graph(f)(fc.random.key(0), fc.ones(4))
    assert any(a.prim.name == "random_uniform" for a in g.applies())
    for seed in (0, 1):
        k = fc.random.key(seed)
        (out,) = evaluate(g, [np.asarray(k), np.ones(4, np.float32)])
        np.testing.assert_allclose(out, _np(f(k, fc.ones(4))), rtol=1e-6)


def test_reparameterised_samples_differentiate():
    k = fc.random.key(0)
    z = _np(fc.random.normal(k, (5,)))
    g_mu, g_sigma = fc.grad(lambda mu, s: (fc.random.normal(k, (5,)) * s + mu).sum(), argnums=(0, 1))(
        fc.array(0.5), fc.array(2.0))
    assert float(g_mu) == pytest.approx(5.0)
    assert float(g_sigma) == pytest.approx(z.sum(), rel=1e-5)


def test_split_unpacks_into_keys():
    k1, k2 = fc.random.split(fc.random.key(0))
    assert k1.shape == (2,) and k1.dtype == np.int32
    np.testing.assert_array_equal(_np(fc.random.normal(k1, (3,))),
                                  _np(fc.random.normal(_children(fc.random.key(0))[0], (3,))))
    assert not np.array_equal(_np(fc.random.normal(k1, (3,))), _np(fc.random.normal(k2, (3,))))


def test_permutation_and_choice_of_arrays():
    k = fc.random.key(0)
    x = fc.arange(12).reshape(6, 2)
    p = _np(fc.random.permutation(k, x))
    assert sorted(p[:, 0].tolist()) == list(range(0, 12, 2))
    np.testing.assert_array_equal(p[:, 1], p[:, 0] + 1)  # rows move whole
    np.testing.assert_array_equal(p[:, 0] // 2, _np(fc.random.permutation(k, 6)))
    c = _np(fc.random.choice(k, fc.arange(10) * 10, (4,), replace=False))
    assert len(set(c.tolist())) == 4 and all(v % 10 == 0 for v in c)
    with pytest.raises(ShapeError):
        fc.random.choice(k, 3, (4,), replace=False)


@pytest.mark.parametrize("sampler", [
    lambda k: fc.random.normal(k, (3, 4)),
    lambda k: fc.random.uniform(k, (5,), fc.float64, -1.0, 2.0),
    lambda k: fc.random.split(k, 3),
    lambda k: fc.random.fold_in(k, 7),
    lambda k: fc.random.bernoulli(k, 0.3, (6,)),
    lambda k: fc.random.randint(k, (6,), 0, 9),
    lambda k: fc.random.permutation(k, 7),
    lambda k: fc.random.bits(k, (5,)),
])
def test_jit_gives_the_eager_bits(sampler):
    """Under jit the key is a traced argument: one compile serves every key."""
    f = fc.jit(sampler)
    for seed in (0, 1, 2 ** 40 + 3):
        k = fc.random.key(seed)
        np.testing.assert_array_equal(_np(f(k)), _np(sampler(k)))


def test_fold_in_with_traced_data_under_jit():
    f = fc.jit(lambda k, i: fc.random.fold_in(k, i))
    k = fc.random.key(1)
    for i in (0, 5, 2 ** 31 + 1):
        np.testing.assert_array_equal(_np(f(k, fc.asarray(np.int64(i)))), _np(fc.random.fold_in(k, i)))


def test_randint_empty_range_gives_minval():
    r = _np(fc.random.randint(fc.random.key(0), (5,), 3, 3))
    assert r.tolist() == [3] * 5
    lo = fc.array([0, 10])
    r = _np(fc.random.randint(fc.random.key(0), (2,), lo, lo + 1))
    assert r.tolist() == [0, 10]
