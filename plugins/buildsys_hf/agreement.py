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


def check(run, names: dict, ctx, precision: str, artifact=None) -> dict:
    seq2seq = any(spec.name == "encoder_hidden_states" for spec in ctx.model.inputs)
    got, wanted, count = (_seq2seq_tokens(run, names, ctx, artifact) if seq2seq else _causal_tokens(run, names, ctx))
    result = compare(got, wanted)
    needed = threshold(ctx.model, precision)
    passed = result["agreement"] >= needed
    details = dict(result, new_tokens=count, prompts=int(wanted.shape[0]), min_token_agreement=needed,
                   artifact_tokens=got.tolist(), eager_tokens=wanted.tolist())
    warnings = []
    if result["first_divergence"] is not None:
        warnings.append(f"token agreement {result['agreement']:.3f} over {result['tokens']} greedy tokens "
                        f"(needed {needed}); {describe_divergence(result['first_divergence'])}")
    summary = (f"{result['agreement']:.3f} of {result['tokens']} greedy tokens equal eager generate()'s, "
               f"{int(wanted.shape[0])} prompts x {count} new tokens, needed {needed}")
    return {"check": CHECK, "passed": passed, "warnings": warnings, "details": details, "summary": summary}


def _causal_tokens(run, names: dict, ctx):
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
    return generate(run, layout, ids, count, eos, attention_mask=mask, pad_token_id=pad), wanted, count


def _seq2seq_tokens(run, names: dict, ctx, artifact):
    """The artifact's encoder (its companion program, through the same runner) and decoder step."""
    from .prompts import new_tokens
    from .resolve import model_dir
    from .seq2seq_generate import Seq2SeqLayout, generate_seq2seq
    from .seq2seq_samples import eager_tokens, encoded_batch, generation_ids

    folder = model_dir(ctx.model, ctx.root)
    step = ctx.load_model()
    count = new_tokens(ctx.model)
    inputs, mask, eos, pad = encoded_batch(folder, ctx.model, PROMPTS, step.config)
    wanted = eager_tokens(step.inner, inputs, count, eos, pad)
    device = "cuda" if artifact.hardware.startswith("cuda") else "cpu"
    encoder = ctx.runner(artifact.kind).load(artifact.program("encoder"), device)
    record = {"signature": {"inputs": [s.model_dump() for s in ctx.model.inputs],
                            "dims": ctx.model.model_dump(mode="json")["dims"]},
              "meta": {"output_names": names["outputs"],
                       "generation": generation_ids(folder, step.config)}}
    layout = Seq2SeqLayout.from_record(record)
    given = ({"input_features": inputs["input_features"]} if "input_features" in inputs
             else {"prompt_ids": inputs["input_ids"], "attention_mask": mask})
    got = generate_seq2seq(encoder, run, layout, max_new_tokens=count, eos_token_id=eos, pad_token_id=pad, **given)
    return got, wanted, count
