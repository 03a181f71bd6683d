"""Property-test your own function's derivatives with fc.testing, in a few lines.

`softplus_attention` below is a user-written function with a hand-written
(custom) VJP. fc.testing.check_grads compares its reverse- and forward-mode
derivatives, up to second order, against central differences, at inputs that
hypothesis draws from a domain. Exits non-zero (with hypothesis's minimal
failing example) if any check fails.

Run: python examples/check_my_vjp.py          (needs hypothesis)
"""

import sys

from hypothesis import given, settings

import funconv as fc
from funconv.testing import check_grads, strategies as st


@fc.custom_vjp
def softplus(x):
    """log(1 + e^x), stable for large |x|."""
    return fc.maximum(x, 0.0) + fc.log1p(fc.exp(-fc.abs(x)))


def softplus_fwd(x):
    return softplus(x), x


def softplus_bwd(x, ct):
    return (ct * fc.sigmoid(x),)  # d/dx softplus = sigmoid, exact and stable


softplus.defvjp(softplus_fwd, softplus_bwd)


def softplus_attention(q, k):
    """Scores softplus(q k^T), normalised per row: uses the custom rule inside."""
    s = softplus(q @ k.T)
    return s / s.sum(axis=1, keepdims=True)


@settings(max_examples=25, deadline=None)
@given(st.arrays(st.shapes(min_dims=2, max_dims=2, max_side=4), elements=(-2.0, 2.0)))
def test_softplus_attention(q):
    # the one line: both modes, second order, float64 arguments
    check_grads(softplus_attention, (q, q * 0.5 + 1.0), order=2)


def main() -> int:
    try:
        test_softplus_attention()
    except AssertionError as e:
        print(f"derivative check FAILED:\n{e}", file=sys.stderr)
        return 1
    print("softplus_attention: VJP and JVP checks up to order 2 passed on 25 random inputs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
