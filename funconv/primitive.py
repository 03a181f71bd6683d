"""The Primitive record: everything about one operation in one place.

A primitive holds its shape/dtype rule, its NumPy `impl` (the single source of
truth: the interpreter, eager mode and the generated NumPy code all call it),
its VJP rule written in funconv's own ops, an optional batching rule, and for
elementwise ops a C expression template for OpenCL. The family factories
(`elementwise_unary`, ...) build the common shapes of primitives.
Imports types and errors; binding goes through tracing (imported lazily).
"""

from __future__ import annotations

from typing import Any, Callable

import attrs
import numpy as np

from funconv.errors import DTypeError, ShapeError
from funconv.types import ArrayType, bool_

REGISTRY: dict[str, "Primitive"] = {}


@attrs.frozen(eq=False, repr=False)
class Primitive:
    """One operation of the IR.

    Attributes:
        name: unique name, printed in graphs (`exp`, `dot_general`, ...).
        shape_rule: `(*in_types: ArrayType, **params) -> ArrayType`; raises
            ShapeError / DTypeError naming the operands.
        impl: `(*np.ndarray, **params) -> np.ndarray`, exact dtype of the rule.
        vjp: `(ct, out, *inputs, **params) -> tuple` of one cotangent (or None
            for zero) per input, written in funconv ops so it traces to IR.
            None when `differentiable` is False.
        differentiable: False for integer- or bool-valued ops (argmax, lt, ...):
            no cotangent flows through them.
        batch: batching rule for vmap (filled in by the vmap issue).
        c_expr: OpenCL C expression template for elementwise ops: `{0}`, `{1}` stand for
            the operands, `{dtype}` for the result's C type. A string serves every real
            operand dtype (bool, integer, float); a dict maps groups of dtype kind letters
            (NumPy's: "b", "iu", "f", "c") to the template for operands of those kinds,
            where one C expression cannot give NumPy's meaning for all of them (NaN
            propagation, integer division, bool arithmetic, complex numbers as float2).
            A kind with no template (complex, unless a key names "c") has no OpenCL
            lowering. `c_template(kind)` picks one.
        linear: the op is linear in all its array inputs (used by passes/tests).
        ufunc: the NumPy ufunc that `impl` is (for elementwise ops), so a backend may
            call it directly, with `out=`; `quiet`: impl runs it with all floating-point
            warnings ignored (as JAX: log(0) is -inf, silently).
    """

    name: str
    shape_rule: Callable[..., ArrayType]
    impl: Callable[..., np.ndarray]
    vjp: Callable[..., tuple] | None = None
    differentiable: bool = True
    batch: Callable | None = None
    c_expr: str | dict[str, str] | None = None
    linear: bool = False
    ufunc: np.ufunc | None = None
    quiet: bool = False

    def __attrs_post_init__(self):
        if self.name in REGISTRY:
            raise ValueError(f"primitive {self.name!r} defined twice")
        REGISTRY[self.name] = self

    def c_template(self, kind: str) -> str | None:
        """The C template (`c_expr`) for operands of dtype kind `kind` ("f", "i", ...)."""
        t = self.c_expr
        if t is None or isinstance(t, str):
            return t if kind != "c" else None
        for kinds, template in t.items():
            if kind in kinds:
                return template
        return None

    def __call__(self, *args, **params):
        """Apply through the current interpreter (eager, or a trace)."""
        from funconv.tracing import bind

        return bind(self, args, params)

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


def types_str(*types: ArrayType) -> str:
    return ", ".join(t.short() for t in types)


def _same_types(name: str, types: tuple[ArrayType, ...]) -> ArrayType:
    t0 = types[0]
    for t in types[1:]:
        if t.shape != t0.shape:
            raise ShapeError(f"{name}: operands must have equal shapes in the IR, got "
                             f"{types_str(*types)}; the user-facing wrapper broadcasts first")
        if t.dtype != t0.dtype:
            raise DTypeError(f"{name}: operands must have equal dtypes in the IR, got "
                             f"{types_str(*types)}; convert with .astype() first")
    return t0


def elementwise(name: str, impl, vjp=None, *, c_expr=None, out_dtype=None, kinds=None,
                differentiable=True, linear=False) -> Primitive:
    """An n-ary elementwise primitive over equal shapes and dtypes.

    `out_dtype`: fixed result dtype (bool for comparisons) or None for the
    operand dtype; `kinds`: the accepted dtype kinds (NumPy kind letters). An `impl`
    that is a NumPy ufunc, or a function with a `ufunc` attribute (a ufunc run with
    warnings ignored, see `quiet`), is recorded as the primitive's `ufunc`.
    """

    def rule(*types: ArrayType) -> ArrayType:
        t = _same_types(name, types)
        if kinds is not None and t.dtype.kind not in kinds:
            raise DTypeError(f"{name}: does not accept {t.short()}")
        return ArrayType(t.shape, out_dtype if out_dtype is not None else t.dtype)

    ufunc = impl if isinstance(impl, np.ufunc) else getattr(impl, "ufunc", None)
    return Primitive(name, rule, impl, vjp, differentiable=differentiable, c_expr=c_expr,
                     linear=linear, ufunc=ufunc, quiet=ufunc is not None and ufunc is not impl)


def comparison(name: str, impl, c_expr=None) -> Primitive:
    return elementwise(name, impl, None, c_expr=c_expr, out_dtype=bool_, differentiable=False)


def params_hashable(params: dict[str, Any]) -> bool:
    try:
        hash(tuple(params.items()))
    except TypeError:
        return False
    return True
