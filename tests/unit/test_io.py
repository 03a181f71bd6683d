"""fc.save / fc.load: round trips of nested pytrees, and clear errors for files
that are missing, truncated, foreign, pickled or edited."""

import collections
import json
import zipfile

import numpy as np
import pytest

import funconv as fc
from funconv.errors import ArgumentError, FuncConvError
from funconv.io import CheckpointError

Pair = collections.namedtuple("Pair", ["left", "right"])


def _nested():
    return {
        "conv": {"w": fc.random.normal(fc.random.key(0), (4, 1, 3, 3)), "b": fc.zeros(4)},
        "layers": [fc.ones((2, 3), dtype=fc.float64), (fc.arange(5), None)],
        "pair": Pair(fc.array([True, False]), fc.array(np.complex64(1 + 2j))),
        "ints": {7: np.arange(3, dtype=np.int64), 2: fc.ones(1)},
        "meta": {"epochs": 3, "lr": 0.1, "name": "cnn", "flag": True, "inf": float("inf")},
        "scalar": fc.array(2.5),
        "numpy_scalars": [np.float32(1.5), np.bool_(True), np.int64(-3)],
    }


def _assert_same(a, b):
    la, ta = fc.tree.flatten(a)
    lb, tb = fc.tree.flatten(b)
    assert ta == tb
    for x, y in zip(la, lb):
        if isinstance(x, (fc.Array, np.ndarray, np.generic)):  # NumPy scalars load as 0-d Arrays
            assert isinstance(y, fc.Array)
            assert np.asarray(x).dtype == np.asarray(y).dtype
            assert np.asarray(x).shape == np.asarray(y).shape
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        else:
            assert type(x) is type(y) and (x == y or (x != x and y != y))


def test_round_trip_nested(tmp_path):
    tree = _nested()
    path = tmp_path / "model.ckpt"
    fc.save(path, tree)
    assert path.exists() and list(tmp_path.iterdir()) == [path]  # no temp file left, no suffix
    out = fc.load(path)
    _assert_same(tree, out)
    assert isinstance(out["pair"], Pair)
    assert out["meta"]["inf"] == float("inf")
    assert out["scalar"].shape == ()


def test_round_trip_optimizer_state(tmp_path):
    params = {"w": fc.ones((3, 2)), "b": fc.zeros(2)}
    opt = fc.optim.adam(1e-2)
    state = opt.init(params)
    grads = {"w": fc.ones((3, 2)), "b": fc.ones(2)}
    _, state = opt.update(grads, state, params)
    fc.save(tmp_path / "s.npz", {"params": params, "opt": state})
    out = fc.load(tmp_path / "s.npz")
    assert type(out["opt"]) is type(state)
    _assert_same({"params": params, "opt": state}, out)


def test_file_is_a_plain_npz(tmp_path):
    fc.save(tmp_path / "a.npz", {"w": fc.ones(3)})
    with np.load(tmp_path / "a.npz", allow_pickle=False) as z:
        assert set(z.files) == {"leaf_0", "__funconv__"}
        meta = json.loads(z["__funconv__"].tobytes())
    assert meta["format"] == "funconv-checkpoint" and meta["leaves"][0]["shape"] == [3]


def test_load_like_restores_unknown_classes(tmp_path):
    fc.save(tmp_path / "c", Pair(fc.ones(2), fc.zeros(3)))
    # a structure given by like= wins over the stored one
    out = fc.load(tmp_path / "c", like=Pair(fc.zeros(2), fc.zeros(3)))
    assert isinstance(out, Pair)
    with pytest.raises(CheckpointError, match="like= expects"):
        fc.load(tmp_path / "c", like=Pair(fc.zeros(3), fc.zeros(3)))
    with pytest.raises(CheckpointError, match="leaves"):
        fc.load(tmp_path / "c", like=[fc.zeros(2)])


def test_missing_class_is_a_clear_error(tmp_path):
    fc.save(tmp_path / "c", Pair(fc.ones(2), fc.zeros(3)))
    raw = _edit_meta(tmp_path / "c", lambda m: m["tree"].update(cls="no_such_module:Pair"))
    with pytest.raises(CheckpointError, match="not available.*like="):
        fc.load(raw)


def test_rejects_unsupported_leaves(tmp_path):
    with pytest.raises(ArgumentError, match="cannot store"):
        fc.save(tmp_path / "x", {"f": lambda: 0})
    with pytest.raises(ArgumentError, match="dict keys"):
        fc.save(tmp_path / "x", {(1, 2): fc.ones(1)})
    assert not (tmp_path / "x").exists()


def test_traced_values_cannot_be_saved(tmp_path):
    def f(x):
        fc.save(tmp_path / "t", x)
        return x

    with pytest.raises(FuncConvError):
        fc.make_graph(f)(fc.ones(2))


# --- bad files ----------------------------------------------------------------------------


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        fc.load(tmp_path / "nope")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        fc.load(tmp_path / "empty")


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_truncated_file(tmp_path, keep):
    fc.save(tmp_path / "full", _nested())
    data = (tmp_path / "full").read_bytes()
    (tmp_path / "cut").write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        fc.load(tmp_path / "cut")


def test_foreign_files(tmp_path):
    (tmp_path / "text").write_text("hello")
    with pytest.raises(CheckpointError, match="not a funconv checkpoint"):
        fc.load(tmp_path / "text")
    np.savez(tmp_path / "plain.npz", a=np.ones(3))
    with pytest.raises(CheckpointError, match="not a funconv checkpoint"):
        fc.load(tmp_path / "plain.npz")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:
        z.writestr("readme.txt", "not numpy")
    with pytest.raises(CheckpointError):
        fc.load(tmp_path / "other.zip")


def test_pickled_member_is_refused(tmp_path):
    np.savez(tmp_path / "p.npz", __funconv__=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(CheckpointError, match="pickle"):
        fc.load(tmp_path / "p.npz")


def _edit_meta(path, edit, leaves=None):
    """Rewrite a checkpoint with its JSON description edited (and leaves replaced)."""
    with np.load(path, allow_pickle=False) as z:
        members = {k: z[k] for k in z.files}
    meta = json.loads(members["__funconv__"].tobytes())
    edit(meta)
    members["__funconv__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    members.update(leaves or {})
    out = str(path) + ".edited.npz"
    np.savez(out, **members)
    return out


def test_tampered_data_fails_the_checksum(tmp_path):
    fc.save(tmp_path / "c", {"w": fc.ones(4)})
    bad = _edit_meta(tmp_path / "c", lambda m: None, {"leaf_0": np.array([1, 1, 1, 2], np.float32)})
    with pytest.raises(CheckpointError, match="checksum"):
        fc.load(bad)


def test_tampered_description(tmp_path):
    fc.save(tmp_path / "c", {"w": fc.ones(4)})
    with pytest.raises(CheckpointError, match="description says"):
        fc.load(_edit_meta(tmp_path / "c", lambda m: m["leaves"][0].update(shape=[2, 2])))
    with pytest.raises(CheckpointError, match="disagree"):
        fc.load(_edit_meta(tmp_path / "c", lambda m: m["leaves"].append(m["leaves"][0])))
    with pytest.raises(CheckpointError, match="version"):
        fc.load(_edit_meta(tmp_path / "c", lambda m: m.update(version=99)))
    with pytest.raises(CheckpointError, match="damaged"):
        fc.load(_edit_meta(tmp_path / "c", lambda m: m["tree"].update(items=[["w", {"t": "array", "i": 5}]])))
    with pytest.raises(CheckpointError, match="format"):
        fc.load(_edit_meta(tmp_path / "c", lambda m: m.update(format="other")))


def test_flipped_byte_is_detected(tmp_path):
    fc.save(tmp_path / "c", {"w": fc.ones(64)})
    data = bytearray((tmp_path / "c").read_bytes())
    i = data.index(np.ones(64, np.float32).tobytes())  # members are stored uncompressed
    data[i + 10] ^= 0xFF
    (tmp_path / "c").write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        fc.load(tmp_path / "c")


def test_save_is_atomic_over_an_existing_file(tmp_path, monkeypatch):
    path = tmp_path / "c"
    fc.save(path, {"w": fc.ones(2)})

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(RuntimeError):
        fc.save(path, {"w": fc.zeros(2)})
    monkeypatch.undo()
    np.testing.assert_array_equal(np.asarray(fc.load(path)["w"]), [1, 1])
    assert [p.name for p in tmp_path.iterdir()] == ["c"]
