"""The onnx plugin's extension hook: other plugins supply ONNX translations to its exporter.

Added to the plugin manager through ``buildsys_addhooks`` when the onnx plugin is loaded; its
reference is rendered into docs/plugins.md with the core's hooks.
"""

from __future__ import annotations

from typing import Any

from buildsys import hookspec


@hookspec
def buildsys_onnx_translations() -> dict[Any, Any]:
    """Supply ONNX translations for torch operators the ONNX exporter cannot translate itself.

    Called by the ``onnx.export`` stage (plugin ``onnx``) inside its worker, once per export,
    after the ``torch.exported`` program is loaded (so custom operators the model defines are
    registered), through ``ctx.hook``. Return a dict mapping a torch operator to its
    translation, or ``{}``/None for none:

    - key: an ``OpOverload`` (``torch.ops.mylib.scale.default``), or its qualified name as a
      string, ``"mylib::scale"`` (the ``default`` overload) or ``"mylib::scale.overload"``;
    - value: an onnxscript function computing the operator from ONNX ops (a Python function
      written with ``onnxscript.opsetNN`` ops, or an ``onnxscript.OnnxFunction``), taking the
      operator's arguments in schema order.

    The stage merges every plugin's dict and passes it to
    ``torch.onnx.export(custom_translation_table=...)``: a translation here replaces the
    exporter's own for that operator. Merge rules: collect-all; each implementation is called
    once (the stage walks ``get_hookimpls()`` so it can attribute each entry); one operator
    supplied by two plugins is a ``PluginError`` naming both (block one with ``-p no:NAME``);
    a key that names no registered operator is a ``PluginError`` naming the plugin. Which
    plugin translated which operator is recorded in the artifact's metadata.

    Import torch and onnxscript inside the implementation. The stage declares this hook in
    ``StageSpec.extension_hooks``, so the names and versions of the plugins implementing it are
    part of the export's action key: adding, removing or upgrading one re-exports. Declared by
    the onnx plugin (``buildsys_onnx.hookspecs``) since contract 1.3; in the core contract
    before.
    """
