"""Validation by generation: greedy tokens through the artifact vs the eager model's ``generate()``.

Runs from the ``buildsys_validation_checks`` hook for ``text-generation`` models: the validate
stage hands over the artifact's runner callable and its context. fp32 must agree token for
token; other precisions report the share of agreeing tokens and the first step where a prompt
diverged, against ``model.generation.min_token_agreement`` (default 0.5).
"""

from __future__ import annotations

CHECK = "generation"
PROMPTS = 4
DEFAULT_AGREEMENT = {"fp32": 1.0}
REDUCED_AGREEMENT = 0.5


def threshold(model, precision: str) -> float:
    given = model.generation.min_token_agreement if model.generation is not None else {}
    return given.get(precision, DEFAULT_AGREEMENT.get(precision, REDUCED_AGREEMENT))


def compare(got, wanted) -> dict:
    """Agreement of two ``[batch, n]`` token arrays (rows may end early: missing tokens disagree)
    and the first divergence: the earliest step at which some prompt differs."""
    steps = max(got.shape[1], wanted.shape[1])
    agree, first = 0, None
    for row in range(wanted.shape[0]):
        for step in range(steps):
            a = int(got[row, step]) if step < got.shape[1] else None
            b = int(wanted[row, step]) if step < wanted.shape[1] else None
            if a == b:
                agree += 1
            elif first is None or step < first["step"]:
                first = {"step": step, "prompt": row, "token": a, "expected": b}
    total = wanted.shape[0] * steps
    return {"agreement": agree / total if total else 1.0, "tokens": total, "first_divergence": first}


def describe_divergence(first: dict) -> str:
    return (f"prompt {first['prompt']} diverged at step {first['step']}: the artifact chose token "
            f"{first['token']}, eager generate() {first['expected']}")


def check(run, names: dict, ctx, precision: str) -> dict:
    from .generate import StepLayout, generate, left_pad
    from .prompts import context_of, eager_tokens, new_tokens, prompts, special_ids, tokenizer_for
    from .resolve import model_dir

    folder = model_dir(ctx.model, ctx.root)
    step = ctx.load_model()
    count, context = new_tokens(ctx.model), context_of(folder, ctx.model)
    eos, pad = special_ids(tokenizer_for(folder), step.config)
    ids, mask = left_pad(prompts(folder, PROMPTS, context, count), pad)
    wanted = eager_tokens(step.inner, ids, mask, count, eos, pad)
    layout = StepLayout.from_inputs(ctx.model.inputs, names["outputs"], ctx.model.dims)
    got = generate(run, layout, ids, count, eos, attention_mask=mask, pad_token_id=pad)
    result = compare(got, wanted)
    needed = threshold(ctx.model, precision)
    passed = result["agreement"] >= needed
    details = dict(result, new_tokens=count, prompts=int(ids.shape[0]), min_token_agreement=needed,
                   artifact_tokens=got.tolist(), eager_tokens=wanted.tolist())
    warnings = []
    if result["first_divergence"] is not None:
        warnings.append(f"token agreement {result['agreement']:.3f} over {result['tokens']} greedy tokens "
                        f"(needed {needed}); {describe_divergence(result['first_divergence'])}")
    summary = (f"{result['agreement']:.3f} of {result['tokens']} greedy tokens equal eager generate()'s, "
               f"{int(ids.shape[0])} prompts x {count} new tokens, needed {needed}")
    return {"check": CHECK, "passed": passed, "warnings": warnings, "details": details, "summary": summary}
