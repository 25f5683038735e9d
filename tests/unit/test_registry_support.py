"""Pure pieces of the registry layer: host selection, retries, staged pulls, listed files."""

from __future__ import annotations

import json

import pytest

from buildsys import ArtifactRef, RegistryError, RegistryUnavailable, Retry, VerifyError, artifact_digest, listed_files
from buildsys.hardware import parse
from buildsys.registry import select_for_host
from buildsys.transfer import staged_pull, write_stream

REFS = [ArtifactRef("m", "1", "portable", hardware="any"), ArtifactRef("m", "1", "int8", hardware="any"),
        ArtifactRef("m", "1", "cpu-aoti", hardware="cpu-x86_64-avx2"),
        ArtifactRef("m", "1", "avx512", hardware="cpu-x86_64-avx512"),
        ArtifactRef("m", "1", "h100-aoti", hardware="cuda-sm90"),
        ArtifactRef("m", "1", "rtx-fp16", hardware="cuda-sm86.sm89"),
        ArtifactRef("m", "1", "l4-fp16", hardware="cuda-sm89")]


def offered(*names: str):
    return [parse(n) for n in names]


@pytest.mark.parametrize("machine, expected", [
    (("cpu-x86_64-avx512",), "avx512"),
    (("cpu-x86_64-avx2",), "cpu-aoti"),
    (("cpu-x86_64-avx2", "h100"), "h100-aoti"),
    (("cpu-x86_64-avx2", "l4"), "l4-fp16"),          # the dedicated sm89 engine beats the sm86+sm89 one
    (("cpu-x86_64-avx2", "rtx3090"), "rtx-fp16"),
])
def test_select_prefers_the_most_specific_fit(machine, expected):
    assert select_for_host(REFS, offered(*machine)).target == expected


def test_select_refuses_ties_and_misfits_listing_candidates():
    with pytest.raises(RegistryError) as info:
        select_for_host(REFS, offered("cpu-aarch64", "a100"))  # only the two portable targets fit
    assert "int8 (any), portable (any)" in str(info.value) and "TARGET" in str(info.value)
    with pytest.raises(RegistryError) as info:
        select_for_host([r for r in REFS if r.hardware.startswith("cuda")], offered("cpu-x86_64-avx2"))
    assert "no published target runs on this machine" in str(info.value) and "h100-aoti (cuda-sm90)" in str(info.value)


def test_retry_is_bounded_and_only_retries_transient_errors():
    calls, sleeps = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RegistryUnavailable("reset")
        return "ok"

    assert Retry(attempts=4, base=0.1).call(flaky, "x", sleep=sleeps.append) == "ok"
    assert len(calls) == 3 and len(sleeps) == 2 and 0.05 <= sleeps[0] <= 0.1 and 0.1 <= sleeps[1] <= 0.2
    calls.clear()
    with pytest.raises(RegistryUnavailable, match="after 4 attempts: down"):
        Retry(attempts=4, base=1, cap=2).call(lambda: calls.append(1) or (_ for _ in ()).throw(RegistryUnavailable("down")),
                                               "x", sleep=sleeps.append)
    assert len(calls) == 4 and max(sleeps) <= 2
    calls.clear()
    with pytest.raises(RegistryError, match="refused"):
        Retry().call(lambda: calls.append(1) or (_ for _ in ()).throw(RegistryError("refused")), "x")
    assert len(calls) == 1


def test_retries_from_the_environment(monkeypatch):
    monkeypatch.setenv("BUILDSYS_REGISTRY_RETRIES", "0")
    assert Retry.from_env().attempts == 1
    monkeypatch.setenv("BUILDSYS_REGISTRY_RETRIES", "lots")
    with pytest.raises(RegistryError, match="BUILDSYS_REGISTRY_RETRIES"):
        Retry.from_env()


def _record(files):
    return {"name": "m", "version": "1", "target": "t", "files": files}


def test_staged_pull_swaps_in_verified_trees_and_leaves_nothing_on_failure(tmp_path):
    ref = ArtifactRef("m", "1", "t")
    data = b"weights"
    import hashlib

    entry = {"name": "w.bin", "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    with staged_pull(tmp_path / "ok", ref) as staged:
        (staged / "w.bin").write_bytes(data)
        (staged / "artifact.json").write_text(json.dumps(_record([entry])))
    assert sorted(p.name for p in (tmp_path / "ok" / "t").iterdir()) == ["artifact.json", "w.bin"]
    with pytest.raises(VerifyError, match="w.bin: sha256"):
        with staged_pull(tmp_path / "bad", ref) as staged:
            (staged / "w.bin").write_bytes(b"tampered")
            (staged / "artifact.json").write_text(json.dumps(_record([entry])))
    assert not (tmp_path / "bad").exists()
    with pytest.raises(VerifyError, match="another artifact"):
        with staged_pull(tmp_path / "other", ArtifactRef("m", "2", "t")) as staged:
            (staged / "w.bin").write_bytes(data)
            (staged / "artifact.json").write_text(json.dumps(_record([entry])))
    with pytest.raises(RegistryError, match="not a safe name"):
        with staged_pull(tmp_path / "x", ArtifactRef("..", "1", "t")):
            pass
    assert not (tmp_path / "other").exists() and not (tmp_path / "x").exists()


def test_listed_files_checks_the_artifact_digest_and_names_before_any_download():
    good = [{"name": "a.bin", "sha256": "0" * 64, "size": 1}]
    ref = ArtifactRef("m", "1", "t")
    assert listed_files(_record(good), ref) == good
    assert listed_files(_record(good), ArtifactRef("m", "1", "t", digest=artifact_digest(_record(good)))) == good
    with pytest.raises(VerifyError, match="the registry recorded sha256:ffff"):
        listed_files(_record(good), ArtifactRef("m", "1", "t", digest="sha256:" + "f" * 64))
    for name in ("../escape", "/etc/passwd", ".hidden", "a/../../b", "", "a\\..\\b", "nul\0byte", 5):
        with pytest.raises(VerifyError, match="unsafe file name"):
            listed_files(_record([dict(good[0], name=name)]), ref)
    with pytest.raises(VerifyError, match="no valid file list"):
        listed_files({"files": "nope"}, ref)


def test_write_stream_checks_as_it_writes(tmp_path):
    import hashlib

    chunks = [b"a" * 10, b"b" * 5]
    expected = hashlib.sha256(b"".join(chunks)).hexdigest()
    assert write_stream(iter(chunks), tmp_path / "f", expected) == (expected, 15)
    with pytest.raises(VerifyError):
        write_stream(iter(chunks), tmp_path / "g", "0" * 64)
    assert not (tmp_path / "g").exists()
