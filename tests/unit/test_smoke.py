import numpy as np

import funconv as fc


def test_eager_and_grad():
    x = fc.array([[1.0, 2.0], [3.0, 4.0]])
    y = fc.tanh(x @ x.T).sum()
    assert y.dtype == np.float32
    np.testing.assert_allclose(np.asarray(y), np.tanh(np.asarray(x) @ np.asarray(x).T).sum(), rtol=1e-6)
    g = fc.grad(lambda x: (x * x).sum())(x)
    np.testing.assert_allclose(np.asarray(g), 2 * np.asarray(x))


def test_namespaces_list_their_api_not_their_imports():
    import funconv as fc

    for mod in (fc.nn, fc.optim, fc.random, fc.fft, fc.linalg, fc.tree, fc.io, fc.testing):
        names = dir(mod)
        assert names == sorted(mod.__all__) and "np" not in names
        assert all(hasattr(mod, n) for n in names)
