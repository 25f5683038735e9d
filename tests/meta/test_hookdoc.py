"""docs/plugins.md is generated from the contract and must stay in sync with it."""

from pathlib import Path

from buildsys import hookdoc, hookspecs

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def test_reference_is_in_sync():
    assert DOC.read_text() == hookdoc.render(), "run: python -m buildsys.hookdoc > docs/plugins.md"


def test_reference_covers_every_hook():
    text = hookdoc.render()
    extension = [f.__name__ for fs in hookdoc.extension_hooks().values() for f in fs]
    assert "buildsys_onnx_translations" in extension  # a backend's own hook, added through buildsys_addhooks
    for name in hookspecs.all_hook_names() + extension:
        assert f"### `{name}(" in text, name
