"""Elementwise primitives and their NumPy-named wrappers.

Each primitive is defined in one statement: name, NumPy impl, VJP rule (in
funconv ops), OpenCL C template. Primitives take operands of equal shape and
dtype; the wrappers (`add`, `exp`, ...) promote dtypes and broadcast first.
Float functions (`exp`, `sin`, ...) compute integer inputs in float32 (as JAX);
integer arithmetic (`//`, `%`, `**`, `abs`, `sign`) stays integer and exact,
as in NumPy. Comparisons and logical/bitwise ops are not differentiable.

Complex cotangents follow JAX's convention: a VJP pairs by Re(sum(ct * v))
without conjugation (so mul's VJP is `ct * y`, and `abs_complex`'s is
`ct * conj(z) / |z|`). Wrappers that are compositions (`clip`, `tan`, `exp2`,
`logaddexp`, `isnan`, ...) need no rules of their own.
"""

from __future__ import annotations

import numpy as np

from funconv.array import Array
from funconv.errors import ArgumentError, DTypeError
from funconv.ops._core import asarray, operand, promote, to_dtype
from funconv.primitive import Primitive, comparison, elementwise
from funconv.types import (ArrayType, DEFAULT_FLOAT, bool_, canonical_dtype, complex_dtype, int32,
                           is_inexact, real_dtype)


def _q(f):
    """`f` without NumPy's warnings: log(0), 1/0, ... give inf/nan silently, as in JAX.

    add/sub/mul stay bare ufuncs: an errstate costs ~1 us per eager call, and their
    warnings (overflow, inf*0) are rare and informative.
    """

    def impl(*args, **params):
        with np.errstate(all="ignore"):  # a fresh one: NumPy 2 errstate objects are single-use
            return f(*args, **params)

    impl.__name__ = getattr(f, "__name__", "impl")
    impl.__qualname__ = impl.__name__
    if isinstance(f, np.ufunc):
        impl.ufunc = f  # recorded on the primitive: backends may call the ufunc directly
    return impl


def _logistic(x):
    # exp(-|x|) never overflows: stable for large |x| of either sign
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _expm1(x):
    if x.dtype.kind != "c":
        return np.expm1(x)
    # NumPy's complex expm1 is exp(a)cos(b) - 1 + i exp(a)sin(b): NaN at inf * 0. Finite z use
    # expm1(a)cos(b) - 2sin^2(b/2) (accurate near 0); the others exp(z) - 1, whose special
    # values (C99's) are the Array API's table for expm1 (exp(inf+0j) - 1 = inf+0j, ...)
    a, b = x.real, x.imag
    finite = np.isfinite(x)
    re = np.expm1(a) * np.cos(b) - 2 * np.sin(b / 2) ** 2
    im = np.exp(a) * np.sin(b)
    out = np.where(finite, re + 1j * im, np.exp(x) - 1)
    return out.astype(x.dtype, copy=False)


def _floor_divide(x, y):
    out = np.floor_divide(x, y)
    if x.dtype.kind == "f":
        # the Array API's table is floor(x / y) where an operand is infinite: +-inf // finite
        # nonzero is +-inf (NumPy: NaN), finite // +-inf is +-0 (NumPy: -1 for opposite signs)
        fix = (np.isinf(x) & np.isfinite(y) & (y != 0)) | (np.isfinite(x) & np.isinf(y))
        if fix.any():
            out = np.where(fix, np.floor(x / y), out)
    return out


def _rsqrt(x):
    return (1 / np.sqrt(x)).astype(x.dtype, copy=False)


def _pow(x, y):
    if x.dtype.kind in "iu":
        # NumPy refuses negative integer exponents; the exact integer results are 0 for
        # |x| > 1, 1 for x == 1, and +-1 for x == -1
        out = np.power(x, np.maximum(y, 0))
        neg = y < 0
        if np.any(neg):
            odd = (y % 2).astype(bool)
            small = np.where(x == 1, 1, np.where(x == -1, np.where(odd, -1, 1), 0))
            out = np.where(neg, small, out)
        return out.astype(x.dtype, copy=False)
    return np.power(x, y).astype(x.dtype, copy=False)


# --- unary ------------------------------------------------------------------------
neg_p = elementwise("neg", np.negative, lambda ct, out, x: (-ct,), c_expr={"iufc": "(-{0})"}, kinds="iufc",
                    linear=True)
exp_p = elementwise("exp", _q(np.exp), lambda ct, out, x: (ct * out,), c_expr="exp({0})", kinds="fc")
log_p = elementwise("log", _q(np.log), lambda ct, out, x: (ct / x,), c_expr="log({0})", kinds="fc")
log1p_p = elementwise("log1p", _q(np.log1p), lambda ct, out, x: (ct / (1 + x),),
                      c_expr="log1p({0})", kinds="fc")
expm1_p = elementwise("expm1", _q(_expm1), lambda ct, out, x: (ct * (out + 1),),
                      c_expr="expm1({0})", kinds="fc")
sin_p = elementwise("sin", np.sin, lambda ct, out, x: (ct * cos(x),), c_expr="sin({0})", kinds="fc")
cos_p = elementwise("cos", np.cos, lambda ct, out, x: (-ct * sin(x),), c_expr="cos({0})", kinds="fc")
tanh_p = elementwise("tanh", np.tanh, lambda ct, out, x: (ct * (1 - out * out),),
                     c_expr="tanh({0})", kinds="fc")
logistic_p = elementwise("logistic", _q(_logistic), lambda ct, out, x: (ct * out * (1 - out),),
                         c_expr="(1/(1+exp(-({0}))))", kinds="f")
sqrt_p = elementwise("sqrt", _q(np.sqrt), lambda ct, out, x: (ct * 0.5 / out,),
                     c_expr="sqrt({0})", kinds="fc")
rsqrt_p = elementwise("rsqrt", _q(_rsqrt), lambda ct, out, x: (ct * -0.5 * out / x,),
                      c_expr="rsqrt({0})", kinds="f")
abs_p = elementwise("abs", np.abs, lambda ct, out, x: (ct * sign(x),), kinds="biuf",
                    c_expr={"f": "fabs({0})", "iu": "(({dtype})abs({0}))", "b": "{0}"})
# sign: (x > 0) - (x < 0), so sign(-0.0) is +0.0 as NumPy (OpenCL's sign keeps -0.0); NaN stays
sign_p = elementwise("sign", np.sign, lambda ct, out, x: (None,), kinds="iuf",
                     c_expr="(FC_ISNAN({0})?{0}:({dtype})(({0}>0)-({0}<0)))")
floor_p = elementwise("floor", np.floor, lambda ct, out, x: (None,), c_expr="floor({0})", kinds="f")
ceil_p = elementwise("ceil", np.ceil, lambda ct, out, x: (None,), c_expr="ceil({0})", kinds="f")
# not for bools (np.square gives int8 there): the wrapper returns a bool array itself (x * x == x)
square_p = elementwise("square", np.square, lambda ct, out, x: (ct * 2 * x,), kinds="iufc",
                       c_expr={"iuf": "(({0})*({0}))", "c": "fc_cmul_{dtype}({0},{0})"})
def _erf(x):
    # NumPy has no erf and the core depends on numpy only: math.erf per element is exact
    # (correctly rounded in float64) at ~0.1 us per element
    return np.asarray(_ERF_UFUNC(x), dtype=x.dtype) if x.size else np.zeros(x.shape, x.dtype)


_ERF_UFUNC = np.frompyfunc(__import__("math").erf, 1, 1)
_TWO_OVER_SQRT_PI = float(2 / np.sqrt(np.pi))
erf_p = elementwise("erf", _erf, lambda ct, out, x: (ct * _TWO_OVER_SQRT_PI * exp(-(x * x)),),
                    c_expr="erf({0})", kinds="f")
round_p = elementwise("round", np.round, lambda ct, out, x: (None,), c_expr="rint({0})", kinds="f")
not_p = elementwise("not", np.logical_not, c_expr="(!{0})", kinds="b", differentiable=False)


def _abs_complex_rule(x: ArrayType) -> ArrayType:
    if x.dtype.kind != "c":
        raise DTypeError(f"abs_complex: expected a complex array, got {x.short()}")
    return ArrayType(x.shape, real_dtype(x.dtype))


def _abs_complex_vjp(ct, out, x):
    # d|z| in the direction v is Re(conj(z) v) / |z|. Cotangents of complex values follow
    # JAX's convention (the VJP pairs by Re(sum(ct * v)), no conjugation, as mul's ct * y),
    # so the cotangent is ct * conj(z) / |z| (0 at z == 0, where |z| has no derivative)
    safe = where(out == 0, 1, out)
    return (complex_(ct / safe, 0 * ct) * conj(x),)


# |z| of a complex array is real, so it is not an `elementwise` (which keeps the dtype)
abs_complex_p = Primitive("abs_complex", _abs_complex_rule, np.abs, _abs_complex_vjp,
                          c_expr={"c": "hypot(({0}).x, ({0}).y)"})


def _convert_rule(x: ArrayType, *, new_dtype) -> ArrayType:
    return ArrayType(x.shape, new_dtype)


def _convert_impl(x, *, new_dtype):
    if x.dtype.kind == "c" and new_dtype.kind != "c":
        x = x.real  # explicit: NumPy warns when it drops the imaginary part
    return x.astype(new_dtype)


def _convert_vjp(ct, out, x, *, new_dtype):
    if not is_inexact(x.dtype):
        return (None,)
    if x.dtype.kind == "f" and ct.dtype.kind == "c":
        ct = real(ct)
    return (ct.astype(x.dtype),)


convert_element_type_p = Primitive("convert_element_type", _convert_rule, _convert_impl,
                                   _convert_vjp, c_expr={"biufc": "(({dtype}){0})"}, linear=True)


def _part_rule(x: ArrayType) -> ArrayType:
    if x.dtype.kind != "c":
        raise DTypeError(f"real/imag: expected a complex array, got {x.short()}")
    return ArrayType(x.shape, real_dtype(x.dtype))


real_p = Primitive("real", _part_rule, np.real, lambda ct, out, x: (complex_(ct, 0 * ct),),
                   c_expr={"c": "({0}).x"}, linear=True)
imag_p = Primitive("imag", _part_rule, np.imag, lambda ct, out, x: (complex_(0 * ct, -ct),),
                   c_expr={"c": "({0}).y"}, linear=True)
conj_p = elementwise("conj", np.conj, lambda ct, out, x: (conj(ct),), kinds="c",
                     c_expr={"c": "(({dtype})(({0}).x, -({0}).y))"}, linear=True)


def _complex_rule(x: ArrayType, y: ArrayType) -> ArrayType:
    if x.shape != y.shape or x.dtype != y.dtype or x.dtype.kind != "f":
        raise DTypeError(f"complex: expected two float arrays of one type, got {x.short()}, {y.short()}")
    return ArrayType(x.shape, complex_dtype(x.dtype))


def _complex(x, y):
    # x + 1j * y would lose infinities (1j * inf has a NaN real part) and -0.0 imaginary parts
    out = np.empty(x.shape, complex_dtype(x.dtype))
    out.real, out.imag = x, y
    return out


complex_p = Primitive("complex", _complex_rule, _complex,
                      lambda ct, out, x, y: (real(ct), -imag(ct)), linear=True,
                      c_expr={"f": "(({dtype})({0}, {1}))"})

# --- binary -----------------------------------------------------------------------
# bool add/mul are NumPy's logical or/and; complex numbers are float2/double2 (x: real part),
# so complex mul/div are helper functions (kernels/prelude.cl)
add_p = elementwise("add", np.add, lambda ct, out, x, y: (ct, ct), linear=True,
                    c_expr={"iufc": "({0}+{1})", "b": "({0}|{1})"})
sub_p = elementwise("sub", np.subtract, lambda ct, out, x, y: (ct, -ct), c_expr={"iufc": "({0}-{1})"},
                    kinds="iufc", linear=True)
mul_p = elementwise("mul", np.multiply, lambda ct, out, x, y: (ct * y, ct * x),
                    c_expr={"iuf": "({0}*{1})", "b": "({0}&{1})", "c": "fc_cmul_{dtype}({0},{1})"})
div_p = elementwise("div", _q(np.true_divide), lambda ct, out, x, y: (ct / y, -ct * out / y),
                    c_expr={"f": "({0}/{1})", "c": "fc_cdiv_{dtype}({0},{1})"}, kinds="fc")


def _pow_vjp(ct, out, x, y):
    # d/dx x**y = y x**(y-1), which is 0 * inf = NaN at x = y = 0, where x**0 = 1 is constant:
    # the derivative there is 0 (as JAX and PyTorch); the exponent is swapped for 1 inside
    # too (a double `where`), so no NaN reaches higher derivatives. Elsewhere y = 0 keeps the
    # formula: d/dy of y x**(y-1) is 1/x there, not 0.
    # d/dy = log(x) x**y, taken as 0 where x == 0 (as JAX)
    flat = (x == 0) & (y == 0)
    y_safe = where(flat, 1, y)
    dx = where(flat, 0, y_safe * power(x, y_safe - 1))
    safe_log = log(where(x == 0, 1, x))
    return ct * dx, ct * out * safe_log


# integer powers exact (kernels/prelude.cl: negative exponents as _pow); no complex pow in OpenCL
pow_p = elementwise("pow", _q(_pow), _pow_vjp, c_expr={"f": "pow({0},{1})", "iu": "fc_pow_{dtype}({0},{1})"},
                    kinds="iufc")


def _max_vjp(ct, out, x, y):
    # ties split the cotangent evenly, as JAX's and PyTorch's maximum (the mean of the two
    # one-sided derivatives; symmetric in x and y)
    half = where(x == y, ct * 0.5, 0)
    return where(x > y, ct, half), where(x < y, ct, half)


def _min_vjp(ct, out, x, y):
    half = where(x == y, ct * 0.5, 0)
    return where(x < y, ct, half), where(x > y, ct, half)


def _rem_vjp(ct, out, x, y):
    # x % y = x - floor(x / y) * y, and floor's derivative is 0 almost everywhere
    return ct, -ct * floor_divide_p(x, y)


# NumPy's rounding (npy_divmod for floats; integers toward -inf, x // 0 == x % 0 == 0): helper
# functions in kernels/prelude.cl. A float // with an infinite operand follows the Array API
# (_floor_divide): floor(x / y), which the float helper returns for those.
floor_divide_p = elementwise("floor_divide", _q(_floor_divide), lambda ct, out, x, y: (None, None),
                             c_expr="fc_floordiv_{dtype}({0},{1})", kinds="iuf")
rem_p = elementwise("rem", _q(np.remainder), _rem_vjp, c_expr="fc_rem_{dtype}({0},{1})", kinds="iuf")


def _atan2_vjp(ct, out, y, x):
    r2 = x * x + y * y
    return ct * x / r2, -ct * y / r2


atan2_p = elementwise("atan2", np.arctan2, _atan2_vjp, c_expr="atan2({0},{1})", kinds="f")
# NaN propagates (OpenCL's fmax/fmin drop it); equal operands give the second, as NumPy (so
# maximum(0.0, -0.0) is -0.0); on bools maximum is or, minimum is and
max_p = elementwise("max", np.maximum, _max_vjp, kinds="biuf",
                    c_expr={"f": "(({0}>{1}||FC_ISNAN({0}))?{0}:{1})", "iu": "(({0}>{1})?{0}:{1})",
                            "b": "({0}|{1})"})
min_p = elementwise("min", np.minimum, _min_vjp, kinds="biuf",
                    c_expr={"f": "(({0}<{1}||FC_ISNAN({0}))?{0}:{1})", "iu": "(({0}<{1})?{0}:{1})",
                            "b": "({0}&{1})"})
# bitwise on integers; on bools bitwise and logical coincide (logical_and casts to bool first)
and_p = elementwise("and", np.bitwise_and, c_expr="({0}&{1})", kinds="biu", differentiable=False)
or_p = elementwise("or", np.bitwise_or, c_expr="({0}|{1})", kinds="biu", differentiable=False)
xor_p = elementwise("xor", np.bitwise_xor, c_expr="({0}^{1})", kinds="biu", differentiable=False)
lt_p = comparison("lt", np.less, "({0}<{1})")
le_p = comparison("le", np.less_equal, "({0}<={1})")
gt_p = comparison("gt", np.greater, "({0}>{1})")
ge_p = comparison("ge", np.greater_equal, "({0}>={1})")
eq_p = comparison("eq", np.equal, {"biuf": "({0}=={1})", "c": "((({0}).x==({1}).x)&&(({0}).y==({1}).y))"})
ne_p = comparison("ne", np.not_equal, {"biuf": "({0}!={1})", "c": "((({0}).x!=({1}).x)||(({0}).y!=({1}).y))"})


def _select_rule(c: ArrayType, x: ArrayType, y: ArrayType) -> ArrayType:
    if c.dtype != bool_:
        raise DTypeError(f"select: the condition must be bool, got {c.short()}")
    if not (c.shape == x.shape == y.shape) or x.dtype != y.dtype:
        raise DTypeError(f"select: operands must match, got {c.short()}, {x.short()}, {y.short()}")
    return x


def _select_vjp(ct, out, c, x, y):
    zero = zeros_like_ct(ct)
    return None, select_p(c, ct, zero), select_p(c, zero, ct)


select_p = Primitive("select", _select_rule, np.where, _select_vjp, c_expr={"biufc": "({0}?{1}:{2})"})


def zeros_like_ct(ct: Array) -> Array:
    from funconv.ops._core import broadcast_to

    return broadcast_to(to_dtype(0, ct.dtype), ct.shape)


# --- wrappers ---------------------------------------------------------------------


def _float_operand(x, opname):
    """Ints and bools become the default float (as `jnp.exp(1)` does)."""
    x = operand(x, opname)
    if not isinstance(x, Array):
        x = asarray(x)
    if not is_inexact(x.dtype):
        x = to_dtype(x, DEFAULT_FLOAT)
    return x


def _unary_float(prim, opname):
    def f(x):
        return prim(_float_operand(x, opname))

    f.__name__ = f.__qualname__ = opname
    f.__doc__ = f"Elementwise `{opname}` (NumPy's meaning); ints are computed in float32."
    return f


def _unary(prim, opname):
    def f(x):
        x = operand(x, opname)
        return prim(x if isinstance(x, Array) else asarray(x))

    f.__name__ = f.__qualname__ = opname
    f.__doc__ = f"Elementwise `{opname}` (NumPy's meaning)."
    return f


def _rounding(prim, opname):
    def f(x):
        x = operand(x, opname)
        x = x if isinstance(x, Array) else asarray(x)
        # an integer is already integral: returned as is, in its dtype (NumPy 2, JAX, Array API)
        return x if x.dtype.kind in "biu" else prim(_float_operand(x, opname))

    f.__name__ = f.__qualname__ = opname
    f.__doc__ = f"Elementwise `{opname}` (NumPy's meaning); integer arrays are returned unchanged."
    return f


def _binary(prim, opname):
    def f(x, y):
        return prim(*promote(opname, x, y))

    f.__name__ = f.__qualname__ = opname
    f.__doc__ = f"Elementwise `{opname}` with NumPy broadcasting and JAX dtype promotion."
    return f


exp = _unary_float(exp_p, "exp")
log = _unary_float(log_p, "log")
log1p = _unary_float(log1p_p, "log1p")
expm1 = _unary_float(expm1_p, "expm1")
sin = _unary_float(sin_p, "sin")
cos = _unary_float(cos_p, "cos")
tanh = _unary_float(tanh_p, "tanh")
sigmoid = logistic = _unary_float(logistic_p, "logistic")
sqrt = _unary_float(sqrt_p, "sqrt")
rsqrt = _unary_float(rsqrt_p, "rsqrt")
floor = _rounding(floor_p, "floor")
ceil = _rounding(ceil_p, "ceil")
negative = _unary(neg_p, "negative")
round = round_ = _rounding(round_p, "round")  # noqa: A001
erf = _unary_float(erf_p, "erf")
sign = _unary(sign_p, "sign")  # (redefined below for complex)
_square = _unary(square_p, "square")


def square(x):
    """Elementwise `x * x` (NumPy's meaning); a bool array is its own square."""
    x = asarray(operand(x, "square"))
    return x if x.dtype.kind == "b" else _square(x)

add = _binary(add_p, "add")
subtract = _binary(sub_p, "subtract")
multiply = _binary(mul_p, "multiply")
maximum = _binary(max_p, "maximum")
minimum = _binary(min_p, "minimum")
less = _binary(lt_p, "less")
less_equal = _binary(le_p, "less_equal")
greater = _binary(gt_p, "greater")
greater_equal = _binary(ge_p, "greater_equal")
equal = _binary(eq_p, "equal")
not_equal = _binary(ne_p, "not_equal")


def divide(x, y):
    """True division; integer operands give float32 (as JAX)."""
    x, y = promote("divide", x, y)
    if not is_inexact(x.dtype):
        x, y = to_dtype(x, DEFAULT_FLOAT), to_dtype(y, DEFAULT_FLOAT)
    return div_p(x, y)


true_divide = divide


def abs(x):  # noqa: A001
    """Elementwise absolute value; |z| of a complex array is real (NumPy's meaning)."""
    x = operand(x, "abs")
    x = x if isinstance(x, Array) else asarray(x)
    return abs_complex_p(x) if x.dtype.kind == "c" else abs_p(x)


absolute = abs


def _int_or_float_pair(opname, x, y):
    x, y = promote(opname, x, y)
    if x.dtype.kind == "b":
        x, y = to_dtype(x, int32), to_dtype(y, int32)
    elif x.dtype.kind == "c":
        raise DTypeError(f"{opname}: not defined for complex operands ({x.aval.short()})")
    return x, y


def floor_divide(x, y):
    """`x // y`: the floor of the quotient; exact for integers (x // 0 is 0 for ints)."""
    return floor_divide_p(*_int_or_float_pair("floor_divide", x, y))


def remainder(x, y):
    """`x % y` with the sign of y (NumPy's meaning); exact for integers."""
    return rem_p(*_int_or_float_pair("remainder", x, y))


def arctan2(x1, x2):
    """`np.arctan2(x1, x2)`: the angle of the point (x2, x1); ints are computed in float32."""
    y, x = promote("arctan2", x1, x2)
    if not is_inexact(y.dtype):
        y, x = to_dtype(y, DEFAULT_FLOAT), to_dtype(x, DEFAULT_FLOAT)
    return atan2_p(y, x)


def clip(x, min=None, max=None, *, a_min=None, a_max=None):  # noqa: A002
    """`np.clip`: limit values to [min, max] (either may be None); `a_min`/`a_max` are
    NumPy's older names."""
    if a_min is not None or a_max is not None:
        if min is not None or max is not None:
            raise ArgumentError("clip: give min/max or a_min/a_max, not both")
        min, max = a_min, a_max  # noqa: A001
    a_min, a_max = min, max
    out = operand(x, "clip")
    out = out if isinstance(out, Array) else asarray(out)
    if a_min is not None:
        out = maximum(out, a_min)
    if a_max is not None:
        out = minimum(out, a_max)
    return out


def reciprocal(x):
    """`1 / x` (integers give float32, as JAX)."""
    return divide(1, _float_operand(x, "reciprocal"))


_LN2 = float(np.log(2.0))
_LN10 = float(np.log(10.0))


def exp2(x):
    """`2 ** x`."""
    return exp(_float_operand(x, "exp2") * _LN2)


def log2(x):
    """Base-2 logarithm."""
    return log(_float_operand(x, "log2")) / _LN2


def log10(x):
    """Base-10 logarithm."""
    return log(_float_operand(x, "log10")) / _LN10


def tan(x):
    """Elementwise tangent (a primitive: sin(z) / cos(z) overflows for complex z with a large
    imaginary part, where tan(z) tends to +-1j)."""
    return tan_p(_float_operand(x, "tan"))


def logaddexp(x, y):
    """`log(exp(x) + exp(y))` without overflow, right at +-inf and differentiable to any order.

    `hi + log1p(exp(lo - hi))`, with `hi`, `lo` the larger and smaller operand picked by ONE
    comparison. Each of its two branches (x >= y, x < y) is an exact formula for logaddexp on
    its own, so the derivative at a tie is the true one, (0.5, 0.5). (`max(x, y) +
    log1p(exp(-|x - y|))` mixes two conventions at the tie, max's and abs's, and was wrong
    there.) `lo - hi` is NaN where both are the same infinity: the result is then that
    infinity (as JAX's `logaddexp`, which returns `x + y` there), with gradient (1, 0), as
    the `max` reduction's first maximum: finite, so a zero cotangent stays zero. NaN inputs
    give NaN.
    """
    x, y = promote("logaddexp", _float_operand(x, "logaddexp"), _float_operand(y, "logaddexp"))
    x_wins = x >= y
    hi, lo = where(x_wins, x, y), where(x_wins, y, x)
    same_inf = (lo == hi) & isinf(hi)
    # (hi replaced by 0 where it is lo's infinity: inf - inf would be NaN, with a warning)
    return hi + log1p(exp(where(same_inf, -np.inf, lo - where(same_inf, 0.0, hi))))


def trunc(x):
    """Round toward zero (integer arrays are returned unchanged)."""
    x = asarray(operand(x, "trunc"))
    if x.dtype.kind in "biu":
        return x
    x = _float_operand(x, "trunc")
    return where(x < 0, ceil(x), floor(x))


mod = remainder


def power(x, y):
    """`x ** y`. Integer arrays stay integer (a negative exponent gives 0 unless |x| == 1);
    a small non-negative Python int exponent is exact (repeated multiplication)."""
    if isinstance(y, int) and not isinstance(y, bool) and isinstance(x, Array) and 0 <= y <= 4:
        if y == 0:
            return zeros_like_ct(x) + 1
        out = x
        for _ in range(y - 1):
            out = out * x
        return out
    x, y = promote("power", x, y)
    if x.dtype.kind == "b":
        x, y = to_dtype(x, int32), to_dtype(y, int32)
    return pow_p(x, y)


def _logical(prim, opname):
    def f(x, y):
        x, y = promote(opname, x, y)
        return prim(to_dtype(x, bool_), to_dtype(y, bool_))

    f.__name__ = f.__qualname__ = opname
    return f


logical_and = _logical(and_p, "logical_and")
logical_or = _logical(or_p, "logical_or")
logical_xor = _logical(xor_p, "logical_xor")


def _bitwise(prim, opname):
    def f(x, y):
        x, y = promote(opname, x, y)
        if x.dtype.kind not in "biu":
            raise DTypeError(f"{opname}: needs integer or bool operands, got {x.aval.short()}, "
                             f"{y.aval.short()}")
        return prim(x, y)

    f.__name__ = f.__qualname__ = opname
    f.__doc__ = f"Elementwise `np.{opname}` of integers or bools (`&`, `|`, `^` on arrays)."
    return f


bitwise_and = _bitwise(and_p, "bitwise_and")
bitwise_or = _bitwise(or_p, "bitwise_or")
bitwise_xor = _bitwise(xor_p, "bitwise_xor")


def logical_not(x):
    x = operand(x, "logical_not")
    return not_p(to_dtype(x if isinstance(x, Array) else asarray(x), bool_))


def invert(x):
    """`~x`: logical not for bool arrays, bitwise not (two's complement) for integers."""
    x = asarray(operand(x, "invert"))
    if x.dtype == bool_:
        return not_p(x)
    if x.dtype.kind not in "iu":
        raise DTypeError(f"invert (~x): needs an integer or bool array, got {x.aval.short()}; "
                         "for floats use negative(x) or logical_not(x)")
    return bitwise_not_p(x)


def where(condition, x=None, y=None):
    """`np.where(condition, x, y)` with broadcasting; `where(condition)` is `nonzero(condition)`
    (concrete conditions only: its result's shape depends on the values)."""
    from funconv.ops._core import broadcast_shapes, broadcast_to

    if x is None and y is None:
        from funconv.ops.indexing import nonzero

        return nonzero(condition)
    if x is None or y is None:
        raise ArgumentError("where: give both x and y, or neither (then it means nonzero(condition))")
    c = operand(condition, "where")
    c = to_dtype(c if isinstance(c, Array) else asarray(bool(c)), bool_)
    x, y = promote("where", x, y)
    shape = broadcast_shapes("where", c.shape, x.shape, types=[c.aval, x.aval])
    return select_p(broadcast_to(c, shape), broadcast_to(x, shape), broadcast_to(y, shape))


def real(x):
    x = asarray(operand(x, "real"))
    return real_p(x) if x.dtype.kind == "c" else x


def imag(x):
    x = asarray(operand(x, "imag"))
    return imag_p(x) if x.dtype.kind == "c" else zeros_like_ct(x)


def conj(x):
    x = asarray(operand(x, "conj"))
    return conj_p(x) if x.dtype.kind == "c" else x


conjugate = conj


def complex_(re, im):
    """`re + 1j * im` from two real arrays."""
    re, im = promote("complex", re, im)
    if not is_inexact(re.dtype):
        re, im = to_dtype(re, DEFAULT_FLOAT), to_dtype(im, DEFAULT_FLOAT)
    return complex_p(re, im)


def astype(x, dtype, *, copy=True, device=None):
    """`x` converted to `dtype` (`copy` is the Array API's: an immutable Array needs none)."""
    from funconv.ops._core import astype as _astype, check_device

    check_device(device, "astype")
    return _astype(asarray(operand(x, "astype")), canonical_dtype(dtype))


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """`np.isclose`: |a - b| <= atol + rtol * |b|, elementwise (infinities equal to themselves)."""
    a, b = promote("isclose", a, b)
    if not is_inexact(a.dtype):
        return a == b
    # compare finite values by distance (zeros stand in for the others, so inf - inf is never
    # computed), infinities by equality
    finite = isfinite(a) & isfinite(b)
    fa, fb = where(finite, a, 0), where(finite, b, 0)
    close = (finite & (abs(fa - fb) <= atol + rtol * abs(fb))) | (a == b)
    if equal_nan:
        close = close | (isnan(a) & isnan(b))
    return close


def isnan(x):
    x = asarray(operand(x, "isnan"))
    return x != x


def isinf(x):
    x = asarray(operand(x, "isinf"))
    return abs(x) == np.inf if is_inexact(x.dtype) else x != x


def isfinite(x):
    x = asarray(operand(x, "isfinite"))
    return abs(x) < np.inf if is_inexact(x.dtype) else x == x


__all__ = ["exp", "log", "log1p", "expm1", "sin", "cos", "tan", "tanh", "sigmoid", "logistic", "erf",
           "sqrt", "rsqrt", "floor", "ceil", "round", "round_", "trunc", "negative", "abs", "absolute", "sign",
           "square",
           "add", "subtract", "multiply", "divide", "true_divide", "floor_divide", "remainder", "mod",
           "power", "maximum", "minimum", "clip", "reciprocal", "exp2", "log2", "log10", "logaddexp",
           "arctan2", "less", "less_equal", "greater", "greater_equal", "equal", "not_equal",
           "logical_and", "logical_or", "logical_xor", "logical_not", "bitwise_and", "bitwise_or",
           "bitwise_xor", "invert", "where", "real", "imag", "conj",
           "conjugate", "complex_", "astype", "isnan", "isinf", "isfinite", "isclose"]


# --- Array API additions ---------------------------------------------------------------
# The standard's remaining elementwise functions. The inverse and hyperbolic functions are
# primitives (NumPy's ufuncs follow C99's special values, which the standard adopts; a
# composition such as (exp(x) - exp(-x)) / 2 overflows early and loses them).


def _sqrt_1_minus_sq(x):
    return sqrt((1 - x) * (1 + x))  # (1 - x)(1 + x), not 1 - x*x: no cancellation near |x| = 1


tan_p = elementwise("tan", _q(np.tan), lambda ct, out, x: (ct * (1 + out * out),),
                    c_expr="tan({0})", kinds="fc")
sinh_p = elementwise("sinh", _q(np.sinh), lambda ct, out, x: (ct * cosh(x),), c_expr="sinh({0})",
                     kinds="fc")
cosh_p = elementwise("cosh", _q(np.cosh), lambda ct, out, x: (ct * sinh(x),), c_expr="cosh({0})",
                     kinds="fc")
asin_p = elementwise("asin", _q(np.arcsin), lambda ct, out, x: (ct / _sqrt_1_minus_sq(x),),
                     c_expr="asin({0})", kinds="fc")
acos_p = elementwise("acos", _q(np.arccos), lambda ct, out, x: (-ct / _sqrt_1_minus_sq(x),),
                     c_expr="acos({0})", kinds="fc")
atan_p = elementwise("atan", _q(np.arctan), lambda ct, out, x: (ct / (1 + x * x),),
                     c_expr="atan({0})", kinds="fc")
asinh_p = elementwise("asinh", _q(np.arcsinh), lambda ct, out, x: (ct / sqrt(x * x + 1),),
                      c_expr="asinh({0})", kinds="fc")
# sqrt(x - 1) sqrt(x + 1) rather than sqrt(x*x - 1): the principal branch for complex x too
acosh_p = elementwise("acosh", _q(np.arccosh),
                      lambda ct, out, x: (ct / (sqrt(x - 1) * sqrt(x + 1)),),
                      c_expr="acosh({0})", kinds="fc")
atanh_p = elementwise("atanh", _q(np.arctanh), lambda ct, out, x: (ct / ((1 - x) * (1 + x)),),
                      c_expr="atanh({0})", kinds="fc")


def _hypot_vjp(ct, out, x, y):
    safe = where(out == 0, 1, out)  # at the origin, the zero subgradient (as abs at 0)
    return ct * x / safe, ct * y / safe


def _copysign_vjp(ct, out, x, y):
    # |x| with y's sign: the derivative in x is +-1 (whether the signs agree), 0 in y
    return ct * where(signbit(x) == signbit(y), 1, -1), None


hypot_p = elementwise("hypot", _q(np.hypot), _hypot_vjp, c_expr="hypot({0},{1})", kinds="f")
copysign_p = elementwise("copysign", np.copysign, _copysign_vjp, c_expr="copysign({0},{1})",
                         kinds="f")
nextafter_p = elementwise("nextafter", np.nextafter, c_expr="nextafter({0},{1})", kinds="f",
                          differentiable=False)
signbit_p = elementwise("signbit", np.signbit, c_expr="signbit({0})", kinds="f", out_dtype=bool_,
                        differentiable=False)
bitwise_not_p = elementwise("bitwise_not", np.invert, c_expr="(~{0})", kinds="iu",
                            differentiable=False)


def _shift_left(x, y):
    # C leaves shifts by >= the width undefined (x86 takes the count mod the width); the
    # Array API means the mathematical x * 2**y, which is 0 in the dtype's width
    bits = 8 * x.dtype.itemsize
    out = np.left_shift(x, np.minimum(y, bits - 1).astype(x.dtype))
    return np.where(y >= bits, np.zeros((), x.dtype), out).astype(x.dtype, copy=False)


def _shift_right(x, y):
    # floor(x / 2**y): for a count >= the width, 0, or -1 for a negative x
    bits = 8 * x.dtype.itemsize
    return np.right_shift(x, np.minimum(y, bits - 1).astype(x.dtype)).astype(x.dtype, copy=False)


# OpenCL C takes shift counts modulo the width: a count >= the width is spelled out
shift_left_p = elementwise("shift_left", _shift_left, kinds="iu", differentiable=False,
                           c_expr="(({1})<8*sizeof({dtype})?({0}<<{1}):({dtype})0)")
shift_right_p = elementwise("shift_right", _shift_right, kinds="iu", differentiable=False,
                            c_expr="({0}>>(({1})<8*sizeof({dtype})?({1}):({dtype})(8*sizeof({dtype})-1)))")

sinh = _unary_float(sinh_p, "sinh")
cosh = _unary_float(cosh_p, "cosh")
arcsin = asin = _unary_float(asin_p, "asin")
arccos = acos = _unary_float(acos_p, "acos")
arctan = atan = _unary_float(atan_p, "atan")
arcsinh = asinh = _unary_float(asinh_p, "asinh")
arccosh = acosh = _unary_float(acosh_p, "acosh")
arctanh = atanh = _unary_float(atanh_p, "atanh")
atan2 = arctan2
pow = power  # noqa: A001
bitwise_invert = bitwise_not = invert


def _real_float_pair(opname, x, y):
    x, y = promote(opname, x, y)
    if x.dtype.kind == "c":
        raise DTypeError(f"{opname}: not defined for complex operands ({x.aval.short()}, "
                         f"{y.aval.short()}); apply it to real(z) and imag(z)")
    if not is_inexact(x.dtype):
        x, y = to_dtype(x, DEFAULT_FLOAT), to_dtype(y, DEFAULT_FLOAT)
    return x, y


def hypot(x1, x2):
    """`sqrt(x1**2 + x2**2)` without overflow or underflow in the squares."""
    return hypot_p(*_real_float_pair("hypot", x1, x2))


def copysign(x1, x2):
    """|x1| with the sign (bit) of x2."""
    return copysign_p(*_real_float_pair("copysign", x1, x2))


def nextafter(x1, x2):
    """The next representable float after x1 toward x2."""
    return nextafter_p(*_real_float_pair("nextafter", x1, x2))


def signbit(x):
    """Whether the sign bit is set (True for -0.0 and -nan too); False for ints >= 0."""
    x = asarray(operand(x, "signbit"))
    if x.dtype.kind == "c":
        raise DTypeError(f"signbit: not defined for complex arrays ({x.aval.short()})")
    if x.dtype.kind in "biu":
        return x < 0 if x.dtype.kind == "i" else zeros_like_ct(x) != 0
    return signbit_p(x)


def positive(x):
    """`+x`: x itself (an Array is immutable, so no copy is needed)."""
    x = asarray(operand(x, "positive"))
    if x.dtype == bool_:
        raise DTypeError(f"positive (+x): not defined for bool arrays ({x.aval.short()})")
    return x


def _shift(prim, opname):
    def f(x1, x2):
        x, y = promote(opname, x1, x2)
        if x.dtype.kind not in "iu":
            raise DTypeError(f"{opname}: needs integer operands, got {x.aval.short()}, {y.aval.short()}")
        return prim(x, y)

    f.__name__ = f.__qualname__ = opname
    f.__doc__ = f"Elementwise `{opname}` of integers (`<<`, `>>` on arrays); a count >= the width " \
                "shifts every bit out."
    return f


bitwise_left_shift = left_shift = _shift(shift_left_p, "bitwise_left_shift")
bitwise_right_shift = right_shift = _shift(shift_right_p, "bitwise_right_shift")


def sign(x):  # noqa: F811  (replaces the real-only wrapper above)
    """Elementwise sign: -1, 0, +1 for reals (NaN stays NaN); z / |z| for complex z (0 at 0)."""
    x = asarray(operand(x, "sign"))
    if x.dtype.kind == "b":
        raise DTypeError(f"sign: not defined for bool arrays ({x.aval.short()})")
    if x.dtype.kind != "c":
        return sign_p(x)
    a = abs(x)
    zero = a == 0
    return where(zero, 0, x / complex_(where(zero, 1, a), 0 * a))


__all__ += ["sinh", "cosh", "asin", "acos", "atan", "asinh", "acosh", "atanh", "arcsin", "arccos",
            "arctan", "arcsinh", "arccosh", "arctanh", "atan2", "bitwise_invert",
            "bitwise_not", "hypot", "copysign", "nextafter", "signbit", "positive",
            "bitwise_left_shift", "bitwise_right_shift", "left_shift", "right_shift"]
