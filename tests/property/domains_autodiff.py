"""Domain entry of autodiff's own primitive, custom_vjp_call (funconv/ops/special.py).

custom_vjp_call is the identity on its first operand; its other operands (the
custom function's arguments and residuals) only feed the user's bwd. Its VJP is
the user's rule, not the derivative of the identity, so only the shape rule and
the impl are checked here (vjp_is_derivative=False, as for stop_gradient); the
rule machinery is tested in tests/unit/test_autodiff_custom.py.
"""

from __future__ import annotations

import funconv as fc
from funconv import tree as tree_util
from funconv.ops.special import _CustomRule

from domains import DOMAINS, Case, Domain, draw_shape, floats, rng


@fc.custom_vjp
def _first(x, y):
    return x


_first.defvjp(lambda x, y: (x, None), lambda res, ct: (ct, None))


def _sample(data, dtype):
    r = rng(data)
    x = floats(r, draw_shape(data), dtype)
    y = floats(r, draw_shape(data), dtype)
    rule = _CustomRule(_first, (), tree_util.structure((x, y)), 2, tree_util.structure(x),
                       [fc.asarray(x).aval], tree_util.structure(None), {})
    # operands: the output value, then the function's arguments (no array residuals)
    return Case((x, x, y), {"rule": rule, "index": 0})


DOMAINS["custom_vjp_call"] = Domain(_sample, numpy=lambda value, *operands, rule, index: value,
                                    vjp_is_derivative=False)
