"""Attention that torch.export traces as one opaque call, then writes back as ``aten`` sdpa.

Tracing ``scaled_dot_product_attention`` runs its backend choice on the fake tensors, and torch
releases before 2.13 decide it with plain size checks: ``attn_mask.size(0) == 1`` (the CPU
flash path) puts a ``batch != 1`` guard on any program whose padding mask follows the batch,
and the math path's reshapes guard ``seq != 1`` and ``total != 1`` — so a generation step with
a dynamic batch did not export on the GPU image's torch 2.11 (``Constraints violated (batch)``;
minimal reproduction in ``tests/unit/plugins/torch/test_torch_attention.py``). During export a
source calls ``buildsys::sdpa`` instead (``traced_sdpa``), whose shape rule is one line and
guards nothing; ``restore`` turns every such call of the exported program back into
``aten.scaled_dot_product_attention`` (the same arguments), so the artifact holds only ATen ops
and each runtime picks its backend as for any program. ``opaque`` does the reverse on a program's
module before it is exported again (the fp16 lowering, AOTInductor's re-export on the device).
"""

from __future__ import annotations

import functools

SCHEMA = "(Tensor query, Tensor key, Tensor value, Tensor? attn_mask, float? scale) -> Tensor"


@functools.cache
def _op():
    import torch

    @torch.library.custom_op("buildsys::sdpa", mutates_args=(), schema=SCHEMA)
    def sdpa(query, key, value, attn_mask, scale):
        return torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask,
                                                                scale=scale).contiguous()

    @sdpa.register_fake
    def _(query, key, value, attn_mask, scale):
        return query.new_empty((*query.shape[:-1], value.shape[-1]))

    return torch.ops.buildsys.sdpa.default


def traced_sdpa(query, key, value, attn_mask=None, scale=None):
    """``scaled_dot_product_attention`` (no dropout, not causal): the opaque op while torch.export
    traces, the function itself otherwise."""
    import torch

    if torch.compiler.is_exporting():
        return _op()(query, key, value, attn_mask, scale)
    return torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask, scale=scale)


def _rewrite(module, rewrite) -> int:
    """``rewrite(node)`` (True when it changed the node) on every call of the graphs in ``module``;
    each graph it changed is recompiled; how many nodes changed."""
    import torch

    count = 0
    for gm in (m for m in module.modules() if isinstance(m, torch.fx.GraphModule)):
        changed = sum(1 for node in gm.graph.nodes if node.op == "call_function" and rewrite(node))
        if changed:
            gm.recompile()
        count += changed
    return count


def restore(program) -> int:
    """Every ``buildsys::sdpa`` call of ``program`` (an ExportedProgram) back to ATen's; how many."""
    import torch

    def to_aten(node) -> bool:
        if node.target is not _op():
            return False
        query, key, value, mask, scale = node.args
        node.target = torch.ops.aten.scaled_dot_product_attention.default
        node.args, node.kwargs = (query, key, value, mask), ({} if scale is None else {"scale": scale})
        return True

    return _rewrite(program.graph_module, to_aten)


def opaque(module) -> int:
    """Every ATen sdpa call (no dropout, not causal, no GQA flag) in the graphs of ``module`` (a
    program's module, about to be exported again) to ``buildsys::sdpa``; how many."""
    import torch

    aten = torch.ops.aten.scaled_dot_product_attention.default
    names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal")

    def to_opaque(node) -> bool:
        if node.target is not aten:
            return False
        bound = dict(zip(names, node.args), **node.kwargs)
        if bound.get("dropout_p", 0.0) or bound.get("is_causal", False) or bound.get("enable_gqa", False):
            return False
        node.target = _op()
        node.args = (bound["query"], bound["key"], bound["value"], bound.get("attn_mask"), bound.get("scale"))
        node.kwargs = {}
        return True

    return _rewrite(module, to_opaque)
