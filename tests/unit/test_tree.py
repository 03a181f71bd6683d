import collections

import attrs
import pytest

import funconv as fc
from funconv.errors import TreeError

Point = collections.namedtuple("Point", "x y")


@attrs.frozen
class Layer:
    w: object
    b: object


def test_roundtrip_nested():
    tree = {"b": [1, (2, None, 3)], "a": Point(4, {"z": 5, "y": 6}), "c": Layer(7, 8)}
    leaves, td = fc.tree.flatten(tree)
    assert leaves == [4, 6, 5, 1, 2, 3, 7, 8]  # dict keys sorted
    assert fc.tree.unflatten(td, leaves) == tree
    assert fc.tree.structure(tree) == td
    assert hash(td) == hash(fc.tree.structure(tree))


def test_map_several_trees():
    a = {"x": 1, "y": [2, 3]}
    b = {"x": 10, "y": [20, 30]}
    assert fc.tree.map(lambda u, v: u + v, a, b) == {"x": 11, "y": [22, 33]}


def test_mismatch_names_key_path():
    with pytest.raises(TreeError, match=r"\['y'\]\[1\]"):
        fc.tree.map(lambda u, v: u, {"x": 1, "y": [2, (3,)]}, {"x": 1, "y": [2, 3]})
    with pytest.raises(TreeError, match="keys"):
        fc.tree.map(lambda u, v: u, {"x": 1}, {"z": 1})


def test_register_custom():
    class Box:
        def __init__(self, v, tag):
            self.v, self.tag = v, tag

    fc.tree.register(Box, lambda b: ([b.v], b.tag), lambda tag, ch: Box(ch[0], tag))
    leaves, td = fc.tree.flatten([Box(3, "t")])
    assert leaves == [3]
    out = fc.tree.unflatten(td, [4])
    assert out[0].v == 4 and out[0].tag == "t"


def test_unflatten_wrong_count():
    _, td = fc.tree.flatten((1, 2))
    with pytest.raises(TreeError, match="2 leaves"):
        fc.tree.unflatten(td, [1])


def test_none_has_no_leaves():
    assert fc.tree.leaves({"a": None, "b": 1}) == [1]
