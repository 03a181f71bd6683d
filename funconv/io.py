"""Checkpoints: `fc.save(path, tree)` and `fc.load(path)`.

The file is an ordinary NumPy `.npz` (a zip of `.npy` members), readable
without funconv: member `leaf_<i>` holds the i-th array leaf of the pytree,
and member `__funconv__` holds, as UTF-8 JSON in a uint8 array, the format
name and version, the tree structure, and per leaf its dtype, shape and
SHA-256. Nothing is pickled: loading uses `np.load(allow_pickle=False)` and
rebuilds containers from the JSON description only, so loading a file
cannot run code.

What a tree may hold: Arrays, NumPy arrays and scalars, Python bool / int /
float / str / None (kept in the JSON and given back as Python values), in
dicts (str or int keys), lists, tuples and named tuples. Named tuples and
attrs classes are stored by name; `load` rebuilds them only if their module
is already imported (it never imports anything), otherwise pass
`like=` (a tree of the same structure, e.g. a fresh `opt.init(params)`).

A file that is truncated, not a funconv checkpoint, or whose contents
disagree with its description (edited, or a member swapped) raises
`CheckpointError`, naming the file and what is wrong.

Imports numpy, tree, array and errors.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tempfile
import zipfile

import attrs
import numpy as np

from funconv import tree as tree_util
from funconv.array import Array
from funconv.errors import ArgumentError, FuncConvError
from funconv.types import SUPPORTED, short_dtype

FORMAT = "funconv-checkpoint"
VERSION = 1
_META = "__funconv__"


class CheckpointError(FuncConvError, ValueError):
    """A checkpoint file is missing, truncated, foreign, or inconsistent."""


# --- structure <-> JSON -----------------------------------------------------------------


def _encode(x, arrays: list, path: str):
    """JSON description of subtree `x`; array leaves are appended to `arrays`."""
    if x is None:
        return {"t": "none"}
    if isinstance(x, (bool, int, float, str)) and not isinstance(x, np.generic):
        if isinstance(x, float) and not np.isfinite(x):
            return {"t": "py_float", "v": repr(x)}  # JSON has no nan/inf
        return {"t": "py", "v": x}
    if isinstance(x, (Array, np.ndarray, np.generic)):
        v = np.asarray(x)  # a traced value raises ConcretizationError here, naming the problem
        if v.dtype not in SUPPORTED:
            raise ArgumentError(f"save: leaf at {path or 'the root'} has dtype {v.dtype}, which "
                                f"funconv does not support")
        # np.ascontiguousarray would turn a 0-d array into a 1-d one
        arrays.append(v if v.flags.c_contiguous else np.array(v, order="C"))
        return {"t": "array", "i": len(arrays) - 1}
    if isinstance(x, dict):
        items = []
        for k in sorted(x, key=lambda k: (type(k).__name__, k)):
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise ArgumentError(f"save: dict keys must be str or int, got {k!r} at {path or 'the root'}")
            items.append([k, _encode(x[k], arrays, f"{path}[{k!r}]")])
        return {"t": "dict", "items": items}
    if isinstance(x, tuple) and hasattr(type(x), "_fields"):
        cls = type(x)
        return {"t": "namedtuple", "cls": f"{cls.__module__}:{cls.__qualname__}",
                "fields": list(cls._fields),
                "children": [_encode(c, arrays, f"{path}.{f}") for f, c in zip(cls._fields, x)]}
    if isinstance(x, (list, tuple)):
        return {"t": type(x).__name__,
                "children": [_encode(c, arrays, f"{path}[{i}]") for i, c in enumerate(x)]}
    if attrs.has(type(x)):
        cls = type(x)
        names = [f.name for f in attrs.fields(cls) if f.init]
        return {"t": "attrs", "cls": f"{cls.__module__}:{cls.__qualname__}", "fields": names,
                "children": [_encode(getattr(x, n), arrays, f"{path}.{n}") for n in names]}
    raise ArgumentError(f"save: cannot store {type(x).__name__} at {path or 'the root'}; a "
                        "checkpoint holds arrays, numbers, strings and None in dicts, lists, "
                        "tuples, named tuples and attrs classes")


def _find_class(spec: str, kind: str, where: str):
    mod_name, _, qual = spec.partition(":")
    mod = sys.modules.get(mod_name)  # never import: loading a file must not run code
    obj = mod
    for part in qual.split("."):
        obj = getattr(obj, part, None) if obj is not None else None
    ok = isinstance(obj, type) and (
        (kind == "namedtuple" and issubclass(obj, tuple) and hasattr(obj, "_fields"))
        or (kind == "attrs" and attrs.has(obj)))
    if not ok:
        raise CheckpointError(f"{where}: the checkpoint holds a {kind} {spec} that is not "
                              "available (its module is not imported); import it first, or "
                              "pass like=<a tree of the same structure> to fc.load")
    return obj


def _decode(d, leaves: list, where: str):
    try:
        t = d["t"]
        if t == "none":
            return None
        if t == "py":
            return d["v"]
        if t == "py_float":
            return float(d["v"])
        if t == "array":
            return leaves[d["i"]]
        if t == "dict":
            return {k: _decode(v, leaves, where) for k, v in d["items"]}
        if t == "list":
            return [_decode(c, leaves, where) for c in d["children"]]
        if t == "tuple":
            return tuple(_decode(c, leaves, where) for c in d["children"])
        if t in ("namedtuple", "attrs"):
            cls = _find_class(d["cls"], t, where)
            children = [_decode(c, leaves, where) for c in d["children"]]
            if t == "namedtuple":
                return cls(*children)
            return cls(**dict(zip(d["fields"], children)))
    except (KeyError, TypeError, IndexError, ValueError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{where}: the structure description is damaged ({e!r})") from None
    raise CheckpointError(f"{where}: unknown node kind {t!r} in the structure description")


# --- save -----------------------------------------------------------------------------------


def save(path, tree) -> None:
    """Write `tree` (a pytree of arrays and Python values) to `path` as a checkpoint.

    The file is written to a temporary name in the same folder and renamed
    into place, so an interrupted save never leaves a half-written checkpoint
    under `path`. `path` is used as given (no `.npz` is appended).

    Args:
        path: a file path (str or os.PathLike).
        tree: the pytree to store; traced values cannot be saved.
    """
    path = os.fspath(path)
    arrays: list[np.ndarray] = []
    structure = _encode(tree, arrays, "")
    meta = {"format": FORMAT, "version": VERSION, "tree": structure,
            "leaves": [{"dtype": a.dtype.str, "shape": list(a.shape),
                        "sha256": hashlib.sha256(a.tobytes()).hexdigest()} for a in arrays]}
    members = {f"leaf_{i}": a for i, a in enumerate(arrays)}
    members[_META] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".fc-save-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **members)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --- load -------------------------------------------------------------------------------------


def _read_members(path: str) -> dict[str, np.ndarray]:
    if not os.path.exists(path):
        raise CheckpointError(f"load: no such file: {path}")
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        raise CheckpointError(f"load: {path} is empty (an interrupted copy?)")
    if not data.startswith(b"PK"):
        raise CheckpointError(f"load: {path} is not a funconv checkpoint (not a .npz/zip file)")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        what = "truncated or corrupted" if not isinstance(e, ValueError) or "pickle" not in str(e) \
            else "holds pickled objects, which funconv never loads"
        raise CheckpointError(f"load: {path} is {what} ({type(e).__name__}: {e})") from None


def load(path, like=None):
    """Read a checkpoint written by `fc.save`.

    Args:
        path: the file.
        like: optional tree of the expected structure (e.g. fresh parameters or
            `opt.init(params)`): the loaded leaves are put into its structure,
            after checking that the count, shapes and dtypes agree.

    Returns:
        The tree, with array leaves as funconv Arrays.

    Raises:
        CheckpointError: the file is missing, truncated, not a funconv
            checkpoint, damaged or edited, or does not fit `like`.
    """
    path = os.fspath(path)
    members = _read_members(path)
    if _META not in members:
        raise CheckpointError(f"load: {path} is a .npz file but not a funconv checkpoint "
                              f"(no {_META} member); it holds {sorted(members)[:5]}")
    try:
        meta = json.loads(members[_META].tobytes().decode("utf-8"))
        fmt, version, leaf_info = meta["format"], meta["version"], meta["leaves"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise CheckpointError(f"load: {path} has a damaged description ({_META})") from None
    if fmt != FORMAT:
        raise CheckpointError(f"load: {path} is not a funconv checkpoint (format {fmt!r})")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(f"load: {path} has format version {version!r}; this funconv reads "
                              f"versions up to {VERSION}: upgrade funconv")
    expected = {f"leaf_{i}" for i in range(len(leaf_info))} | {_META}
    if set(members) != expected:
        raise CheckpointError(f"load: {path} members {sorted(set(members) ^ expected)} disagree "
                              "with its description (the file was edited or damaged)")
    leaves = []
    for i, info in enumerate(leaf_info):
        a = members[f"leaf_{i}"]
        try:
            ok_type = a.dtype.str == info["dtype"] and list(a.shape) == list(info["shape"])
            digest = info["sha256"]
        except (KeyError, TypeError):
            raise CheckpointError(f"load: {path} has a damaged description of leaf {i}") from None
        if not ok_type:
            raise CheckpointError(f"load: {path}: leaf {i} is {a.dtype}{list(a.shape)} but the "
                                  f"description says {info['dtype']}{info['shape']}")
        if hashlib.sha256(a.tobytes()).hexdigest() != digest:
            raise CheckpointError(f"load: {path}: leaf {i} does not match its checksum (the "
                                  "file was edited or damaged)")
        leaves.append(Array._from_value(a))
    tree = _decode(meta.get("tree"), leaves, f"load: {path}")
    if like is None:
        return tree
    return _into_like(tree, like, path)


def _into_like(tree, like, path):
    got, _ = tree_util.flatten(tree)
    want, like_def = tree_util.flatten(like)
    if len(got) != len(want):
        raise CheckpointError(f"load: {path} holds {len(got)} leaves, like= has {len(want)}")
    for i, (g, w) in enumerate(zip(got, want)):
        if isinstance(w, (Array, np.ndarray)):
            g_arr = np.asarray(g)
            if g_arr.shape != np.shape(w) or g_arr.dtype != np.asarray(w).dtype:
                raise CheckpointError(
                    f"load: {path}: leaf {i} is {short_dtype(g_arr.dtype)}{list(g_arr.shape)}, "
                    f"like= expects {short_dtype(np.asarray(w).dtype)}{list(np.shape(w))}")
    return tree_util.unflatten(like_def, got)


__all__ = ["save", "load", "CheckpointError"]


def __dir__() -> list[str]:
    """`dir()` of the namespace lists its public API (`__all__`), not its imports."""
    return sorted(__all__)
