"""The kept timing cache file, and the core's ``StageContext.persistent_file`` it lives in."""

from __future__ import annotations

import threading
import time

import pytest

from buildsys import StageContext
from buildsys_tensorrt import timing


def context(tmp_path, persistent=True) -> StageContext:
    out = tmp_path / "work" / "out"
    out.mkdir(parents=True)
    return StageContext.create(out_dir=out, stage="tensorrt.plan", node_id="n", targets=["t"], hardware="cuda-sm86",
                               precision="fp32", root=tmp_path,
                               persistent_root=tmp_path / "store" / "persistent" if persistent else None)


def test_round_trip_and_atomic_replace(tmp_path):
    path = tmp_path / "c.cache"
    assert timing.read(path) == b""
    timing.write(path, b"\x00payload\xff")
    assert timing.read(path) == b"\x00payload\xff"
    timing.write(path, b"second")
    assert timing.read(path) == b"second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.cache"], "a temporary file was left behind"


@pytest.mark.parametrize("damage, why", [
    (lambda data: data[:-3], "sha256 does not match"),
    (lambda data: data[:-1] + bytes([data[-1] ^ 1]), "sha256 does not match"),
    (lambda data: b"garbage" + data, "does not start with the buildsys timing-cache header"),
])
def test_corrupt_cache_is_a_clear_error(tmp_path, damage, why):
    path = tmp_path / "c.cache"
    timing.write(path, b"x" * 100)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(timing.TimingCacheError) as info:
        timing.read(path)
    assert str(path) in str(info.value) and why in str(info.value)
    assert "delete that file" in info.value.hint and "timing_cache: false" in info.value.hint


def test_key_names_flavour_version_and_hardware():
    assert timing.key("tensorrt-rtx", "1.7.1.116", "cuda-sm86.sm89") == "tensorrt-rtx-1.7.1.116-cuda-sm86.sm89.cache"


def test_persistent_file_lives_in_the_store_and_survives_the_node(tmp_path):
    ctx = context(tmp_path)
    with ctx.persistent_file("ns", "k.cache") as path:
        path.write_text("kept")
    assert path == tmp_path / "store" / "persistent" / "ns" / "k.cache"
    again = StageContext.create(out_dir=tmp_path / "other-node", stage="tensorrt.plan", node_id="m", targets=["t"],
                                hardware="cuda-sm86", precision="fp32", root=tmp_path,
                                persistent_root=tmp_path / "store" / "persistent")
    with again.persistent_file("ns", "k.cache") as second:
        assert second.read_text() == "kept"


def test_persistent_file_without_a_store_uses_the_node_scratch_folder(tmp_path):
    ctx = context(tmp_path, persistent=False)
    with ctx.persistent_file("ns", "k") as path:
        assert path.parent.parent == tmp_path / "work" / "persistent"


@pytest.mark.parametrize("bad", ["../up", "a/b", "", ".hidden"])
def test_persistent_file_refuses_path_like_names(tmp_path, bad):
    with pytest.raises(ValueError, match="letters, digits"):
        with context(tmp_path).persistent_file("ns", bad):
            pass


def test_persistent_file_is_locked_while_in_use(tmp_path):
    ctx = context(tmp_path)
    order = []

    def second():
        with ctx.persistent_file("ns", "k"):
            order.append("second")

    with ctx.persistent_file("ns", "k"):
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.2)
        order.append("first done")
    thread.join(5)
    assert order == ["first done", "second"]
