"""Which attention implementation the model is loaded with: ``model.attention``.

``eager`` (transformers' own matmuls and softmax) translates through every exporter; ``sdpa``
(one fused ``scaled_dot_product_attention``) is what torch runtimes run fastest, but the dynamo
ONNX exporter fails after it for some architectures (T5, Swin). ``auto`` decides at plan time from
the manifest's targets (``describe`` gets their kinds): one torch.export node feeds every target,
so the choice is the manifest's, not a target's — ``sdpa`` when only torch targets consume the
program, ``eager`` as soon as one target goes through ONNX. The choice is written into the
described model block, hence into the fingerprint of every node. A model class without sdpa
support falls back to eager when it loads, the reason recorded in the artifact's meta.
"""

from __future__ import annotations

from buildsys import BuildsysError

# kinds built from the torch.exported program without an ONNX exporter
TORCH_KINDS = frozenset({"torch.exported", "torch.aoti"})


def resolve(requested: str | None, task, target_kinds: frozenset[str]) -> str | None:
    """The implementation to load with (None for the generation steps, which bring their own)."""
    if task.step in ("kv-cache", "seq2seq"):
        if requested not in (None, "auto"):
            raise BuildsysError(f"model.attention: '{requested}' does not apply to task '{task.name}': its "
                                "decoder step exports its own attention", hint="remove model.attention")
        return None
    if requested in ("eager", "sdpa"):
        return requested
    return "sdpa" if target_kinds and target_kinds <= TORCH_KINDS else "eager"


def unsupported(exc: Exception) -> str | None:
    """transformers' refusal of an implementation the model class lacks, as a reason; else None."""
    text = str(exc)
    if "does not support an attention implementation" in text or "scaled_dot_product_attention" in text:
        return text.split(". ")[0].strip()
    return None
