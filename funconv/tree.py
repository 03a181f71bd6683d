"""Pytrees: nested containers of leaves (arrays, numbers).

Containers: dict (sorted keys), list, tuple, namedtuple, None (no leaves),
attrs classes, and anything `register`ed. `flatten` returns the leaves and a
hashable `TreeDef`; a structure mismatch names the key path where it happens.
Imports errors only.
"""

from __future__ import annotations

from typing import Any, Callable

import attrs

from funconv.errors import TreeError

# type -> (to_children(x) -> (children, aux, keys), from_children(aux, children) -> x)
_REGISTRY: dict[type, tuple[Callable, Callable]] = {}


def register(cls: type, flatten: Callable, unflatten: Callable) -> None:
    """Register a container type.

    `flatten(x) -> (children, aux)` where aux is hashable static data;
    `unflatten(aux, children) -> x`.
    """
    _REGISTRY[cls] = (lambda x: (*flatten(x), None), unflatten)


def _dict_flat(d):
    try:
        keys = sorted(d)
    except TypeError:
        raise TreeError(f"pytree dict keys must be sortable, got {list(d)!r}") from None
    return [d[k] for k in keys], tuple(keys), keys


_REGISTRY[dict] = (_dict_flat, lambda keys, ch: dict(zip(keys, ch)))
_REGISTRY[list] = (lambda x: (list(x), len(x), None), lambda n, ch: list(ch))
_REGISTRY[tuple] = (lambda x: (list(x), len(x), None), lambda n, ch: tuple(ch))


def _node_kind(x):
    t = type(x)
    if t in _REGISTRY:
        return t, _REGISTRY[t]
    if x is None:
        return type(None), None
    if isinstance(x, tuple) and hasattr(t, "_fields"):  # namedtuple
        return t, (lambda v: (list(v), None, list(t._fields)), lambda _, ch, t=t: t(*ch))
    if attrs.has(t):
        names = [f.name for f in attrs.fields(t) if f.init]
        return t, (lambda v: ([getattr(v, n) for n in names], None, names),
                   lambda _, ch, t=t, names=names: t(**dict(zip(names, ch))))
    return None, None


@attrs.frozen
class TreeDef:
    """The structure of a pytree: node type, static data and children."""

    kind: Any  # the container type; None for a leaf; type(None) for None
    aux: Any
    children: tuple["TreeDef", ...]
    num_leaves: int

    def __str__(self) -> str:
        return _treedef_str(self)

    def unflatten(self, leaves):
        return unflatten(self, leaves)


_LEAF = TreeDef(None, None, (), 1)
_NONE = TreeDef(type(None), None, (), 0)


def _treedef_str(t: TreeDef) -> str:
    if t.kind is None:
        return "*"
    if t.kind is type(None):
        return "None"
    inner = ", ".join(_treedef_str(c) for c in t.children)
    if t.kind is dict:
        inner = ", ".join(f"{k!r}: {_treedef_str(c)}" for k, c in zip(t.aux, t.children))
        return "{" + inner + "}"
    if t.kind is list:
        return f"[{inner}]"
    if t.kind is tuple:
        return f"({inner}{',' if len(t.children) == 1 else ''})"
    return f"{t.kind.__name__}({inner})"


def flatten(tree, is_leaf: Callable | None = None) -> tuple[list, TreeDef]:
    """Leaves of `tree` in a canonical order and its structure."""
    leaves: list = []
    return leaves, _flatten(tree, leaves, is_leaf)


def _flatten(x, leaves, is_leaf) -> TreeDef:
    if is_leaf is not None and is_leaf(x):
        leaves.append(x)
        return _LEAF
    kind, fns = _node_kind(x)
    if kind is None:
        leaves.append(x)
        return _LEAF
    if fns is None:
        return _NONE
    children, aux, _ = fns[0](x)
    subs = tuple(_flatten(c, leaves, is_leaf) for c in children)
    return TreeDef(kind, aux, subs, sum(s.num_leaves for s in subs))


def unflatten(treedef: TreeDef, leaves) -> Any:
    """Inverse of `flatten`."""
    leaves = list(leaves)
    if len(leaves) != treedef.num_leaves:
        raise TreeError(f"unflatten: structure {treedef} has {treedef.num_leaves} leaves, "
                        f"got {len(leaves)}")
    it = iter(leaves)
    return _unflatten(treedef, it)


def _unflatten(t: TreeDef, it):
    if t.kind is None:
        return next(it)
    if t.kind is type(None):
        return None
    children = [_unflatten(c, it) for c in t.children]
    if t.kind in _REGISTRY:
        return _REGISTRY[t.kind][1](t.aux, children)
    _, fns = _node_kind_for_type(t.kind)
    return fns[1](t.aux, children)


def _node_kind_for_type(t):
    if hasattr(t, "_fields"):
        return t, (None, lambda _, ch: t(*ch))
    names = [f.name for f in attrs.fields(t) if f.init]
    return t, (None, lambda _, ch: t(**dict(zip(names, ch))))


def leaves(tree, is_leaf: Callable | None = None) -> list:
    return flatten(tree, is_leaf)[0]


def structure(tree, is_leaf: Callable | None = None) -> TreeDef:
    return flatten(tree, is_leaf)[1]


def _keyed_children(x):
    """Children of a container with their path labels."""
    kind, fns = _node_kind(x)
    children, aux, keys = fns[0](x)
    if kind is dict:
        labels = [f"[{k!r}]" for k in keys]
    elif keys is not None:
        labels = [f".{k}" for k in keys]
    else:
        labels = [f"[{i}]" for i in range(len(children))]
    return kind, aux, children, labels


def _check_same(path: str, a, b, is_leaf):
    """Raise TreeError naming the first key path where b's structure departs from a's."""
    ka, _ = _node_kind(a) if not (is_leaf and is_leaf(a)) else (None, None)
    if ka is None:
        return
    kb, _ = _node_kind(b) if not (is_leaf and is_leaf(b)) else (None, None)
    if ka is type(None):
        if b is not None:
            raise TreeError(f"pytree structures differ at {path or 'the root'}: None vs {type(b).__name__}")
        return
    if ka is not kb:
        raise TreeError(f"pytree structures differ at {path or 'the root'}: "
                        f"{ka.__name__} vs {type(b).__name__}")
    _, aux_a, ch_a, labels = _keyed_children(a)
    _, aux_b, ch_b, _ = _keyed_children(b)
    if aux_a != aux_b or len(ch_a) != len(ch_b):
        what = (f"keys {list(aux_a)} vs {list(aux_b)}" if ka is dict
                else f"{len(ch_a)} vs {len(ch_b)} children")
        raise TreeError(f"pytree structures differ at {path or 'the root'}: {what}")
    for lab, ca, cb in zip(labels, ch_a, ch_b):
        _check_same(path + lab, ca, cb, is_leaf)


def map(f: Callable, tree, *rest, is_leaf: Callable | None = None):  # noqa: A001
    """`f` applied leafwise over one or more trees of the same structure."""
    lv, td = flatten(tree, is_leaf)
    others = []
    for r in rest:
        lr, tr = flatten(r, is_leaf)
        if tr != td:
            _check_same("", tree, r, is_leaf)
            raise TreeError(f"pytree structures differ: {td} vs {tr}")
        others.append(lr)
    return unflatten(td, [f(*xs) for xs in zip(lv, *others)])


tree_map = map
tree_flatten = flatten
tree_unflatten = unflatten
tree_leaves = leaves
tree_structure = structure

__all__ = ["map", "flatten", "unflatten", "leaves", "structure", "register", "TreeDef"]


def __dir__() -> list[str]:
    """`dir()` of the namespace lists its public API (`__all__`), not its imports."""
    return sorted(__all__)
