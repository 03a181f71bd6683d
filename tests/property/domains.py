"""The domain table: for every primitive, how to draw valid inputs and what it means in NumPy.

`DOMAINS` maps a primitive's name to a `Domain`. The generic property tests in
test_primitives.py run over every entry: (a) the shape rule against the impl,
(b) the impl against the NumPy meaning, (c) the VJP by central differences,
(d) the exact adjoint identity for linear primitives, (e) second order for
nonlinear differentiable ones. test_registry checks that every primitive in
`funconv.primitive.REGISTRY` has an entry.

Other families add their entries in a module `tests/property/domains_<family>.py`
(imported automatically at the end of this file):

    from domains import DOMAINS, Case, Domain, draw_shape, floats, rng

    def _sample(data, dtype):
        r = rng(data)
        x = floats(r, draw_shape(data, min_dims=3, max_dims=3), dtype)
        return Case((x,), {"window": (2,)})

    DOMAINS["my_prim"] = Domain(_sample, numpy=lambda x, *, window: ...)

A sampler gets hypothesis's `data` object and a float dtype (float32 for the
impl checks, float64 for the derivative checks) and returns a `Case`: the
positional NumPy arguments and the params. Shapes come from hypothesis; values
from a NumPy generator seeded by hypothesis (fast, and still shrinkable).
"""

from __future__ import annotations

import importlib
import pathlib
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from hypothesis import strategies as st


@dataclass(frozen=True)
class Case:
    args: tuple
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Domain:
    """How to test one primitive.

    Attributes:
        sample: `(data, float_dtype) -> Case`.
        numpy: the NumPy meaning, `numpy(*args, **params) -> ndarray`, written
            independently of the impl (None: only the shape rule is checked).
        diff: indices of the arguments to differentiate (None: every float or
            complex argument).
        complex_io: the primitive takes or returns complex values; the
            derivative checks then go through real inputs (complex built by
            `complex_p`) and real outputs (split by `real_p`/`imag_p`), so they
            test against funconv's own (JAX) cotangent convention.
        second_order: run the second-order check when the primitive is nonlinear.
        rtol, atol: tolerances of the impl-vs-NumPy check in float32.
        vjp_is_derivative: False where the VJP is deliberately not the derivative
            (stop_gradient): the derivative checks are skipped.
    """

    sample: Callable[[Any, np.dtype], Case]
    numpy: Callable[..., np.ndarray] | None = None
    diff: tuple[int, ...] | None = None
    complex_io: bool = False
    second_order: bool = True
    rtol: float = 2e-6
    atol: float = 1e-6
    vjp_is_derivative: bool = True


DOMAINS: dict[str, Domain] = {}

# --- drawing helpers -------------------------------------------------------------------------


def rng(data) -> np.random.Generator:
    """A NumPy generator seeded from hypothesis (so failures replay and shrink)."""
    return np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))


def draw_shape(data, min_dims=0, max_dims=3, min_side=1, max_side=4) -> tuple[int, ...]:
    n = data.draw(st.integers(min_dims, max_dims), label="ndim")
    return tuple(data.draw(st.lists(st.integers(min_side, max_side), min_size=n, max_size=n),
                           label="shape"))


def floats(r, shape, dtype, lo=-2.0, hi=2.0) -> np.ndarray:
    return r.uniform(lo, hi, size=shape).astype(dtype)


def away(r, shape, dtype, lo=0.3, hi=2.0) -> np.ndarray:
    """Floats with |x| in [lo, hi] and a random sign: away from 0."""
    return (r.choice([-1.0, 1.0], size=shape) * r.uniform(lo, hi, size=shape)).astype(dtype)


def off_integers(r, shape, dtype, span=3) -> np.ndarray:
    """Floats at least 0.1 away from any integer and from any half-integer (for floor/round)."""
    k = r.integers(-span, span + 1, size=shape)
    frac = r.choice([0.2, 0.3, 0.7, 0.8], size=shape) + r.uniform(-0.05, 0.05, size=shape)
    return (k + frac).astype(dtype)


def distinct(r, shape, dtype, gap=0.25) -> np.ndarray:
    """Values with no ties (pairwise at least `gap` apart): max/min/argmax are smooth there."""
    n = int(np.prod(shape, dtype=np.int64))
    v = (r.permutation(n) - n / 2) * gap + r.uniform(0, gap / 4, size=n)
    return v.reshape(shape).astype(dtype)


def ints(r, shape, lo=-5, hi=6, dtype=np.int32) -> np.ndarray:
    return r.integers(lo, hi, size=shape).astype(dtype)


def axes_subset(data, ndim: int) -> tuple[int, ...]:
    """A sorted tuple of distinct axes (possibly empty)."""
    return tuple(i for i in range(ndim) if data.draw(st.booleans(), label=f"axis{i}"))


# --- family modules of other engineers register here -----------------------------------------------


def load_family_domains() -> None:
    """Import every tests/property/domains_*.py so its entries join DOMAINS."""
    here = pathlib.Path(__file__).parent
    if str(here) not in sys.path:
        sys.path.insert(0, str(here))
    for p in sorted(here.glob("domains_*.py")):
        importlib.import_module(p.stem)
