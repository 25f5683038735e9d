"""Gather the ``buildsys_onnx_translations`` of every plugin into one exporter table.

Each implementation is called on its own (walking ``get_hookimpls()``) so that the table knows
which plugin supplied which operator: a clash names both plugins, and the artifact records
who translated what. The rules are those documented on the hook in ``buildsys_onnx/hookspecs.py``.
"""

from __future__ import annotations

from buildsys import PluginError

HOOK = "buildsys_onnx_translations"


def collect(hook) -> tuple[dict, dict[str, str]]:
    """``(table for torch.onnx.export, {operator name: plugin})`` from every implementation."""
    caller = getattr(hook, HOOK, None) if hook is not None else None
    if caller is None:
        return {}, {}
    table, owners = {}, {}
    for impl in reversed(caller.get_hookimpls()):  # pluggy's calling order: last registered first
        if impl.hookwrapper or impl.wrapper:
            continue
        for key, function in _returned(impl).items():
            target = resolve_op(key, impl.plugin_name)
            name = _name(target)
            if name in owners:
                raise PluginError(f"operator {name} has an ONNX translation from both plugin "
                                  f"'{owners[name]}' and plugin '{impl.plugin_name}'",
                                  hint=f"block one of them with -p no:{impl.plugin_name}")
            table[target], owners[name] = function, impl.plugin_name
    return table, owners


def _returned(impl) -> dict:
    result = impl.function()
    if result is None:
        return {}
    if not isinstance(result, dict):
        raise PluginError(f"plugin '{impl.plugin_name}': {HOOK} returned {type(result).__name__}, "
                          "expected a dict {torch operator: onnxscript function}")
    return result


def resolve_op(key, plugin: str):
    """An ``OpOverload`` for a key given as an overload, an overload packet, or ``"ns::op[.overload]"``."""
    import torch

    if isinstance(key, torch._ops.OpOverloadPacket):
        return key.default
    if isinstance(key, torch._ops.OpOverload):
        return key
    if isinstance(key, str) and "::" in key:
        namespace, _, rest = key.partition("::")
        name, _, overload = rest.partition(".")
        try:
            return getattr(getattr(getattr(torch.ops, namespace), name), overload or "default")
        except (AttributeError, RuntimeError):
            pass
    raise PluginError(f"plugin '{plugin}': {HOOK} key {key!r} names no registered torch operator",
                      hint="use torch.ops.NS.OP.OVERLOAD or 'NS::OP[.OVERLOAD]' for an operator the "
                           "model registers (torch.library.custom_op) or torch defines")


def _name(target) -> str:
    from .diagnose import op_name

    return op_name(target)
