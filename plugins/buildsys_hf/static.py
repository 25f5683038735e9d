"""Greedy generation through a static KV window (public): every decode step has the same shapes,
so on CUDA the whole step is captured once as a CUDA graph and replayed per token.

The step program (``causal.py``) is used as built, no second export: its cache dims accept a past
of ``W = max_context - 1`` slots with one new token (``total = W + 1``). The window keeps those
``W`` slots in static buffers on the artifact's device, the prompt's cache right-aligned after
the prefill and the empty slots on the left masked out (attention mask 0). Each decode step runs
the program on (token ``[B, 1]``, mask ``[B, W + 1]``, positions ``[B, 1]``, the windows
``[B, kv_heads, W, head_dim]``), copies ``present[:, :, 1:]`` back into the windows (the slot
dropped is the oldest, empty while the context is not full), shifts the mask the same way, takes
the argmax of the last logits (rows that ended emit the pad id, as transformers does) and counts
the positions on. On CUDA those operations are one captured graph (``buildsys_torch.cudagraph``):
one launch per token and no copy to the host until the end. On the CPU the same step runs as is.
The prefill (past 0, seq the left-padded prompt) is captured too on CUDA: the prompt is
left-padded further to a multiple of ``PREFILL_ALIGN`` tokens (masked, so the tokens do not
change), and each (batch, padded length) gets one graph the first time it is seen; all of a
window's graphs share one memory pool (they never run at once, and what they leave behind is in
the window's own buffers). ``torch.exported`` and ``torch.aoti`` artifacts::

    import buildsys
    from buildsys_hf.static import generate_static, load_step
    step = load_step(buildsys.load("manifests/tiny-llama-gen.yaml", target="exported", device="cuda"))
    tokens = generate_static(step, [[2, 17, 9], [2, 5]], max_new_tokens=16, eos_token_id=3)

Tokens are ``generate()``'s (``generate.generate``, transformers' ``generate(do_sample=False)``).
A prompt and its new tokens must fit ``max_context``; ``max_new_tokens=None`` generates until
every row ended or the context is full, so no real token ever leaves the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from buildsys import BuildsysError

from .generate import PAST, PRESENT, StepLayout, check_context, left_pad

KINDS = ("torch.exported", "torch.aoti")
CHECK_EVERY = 16  # decode steps between looks at whether every row ended (each look waits for the GPU)
PREFILL_ALIGN = 32  # CUDA graphs: prompts padded to a multiple of this, one captured prefill per length


@dataclass
class TorchStep:
    """A step program on ``device``: ``call(*tensors)`` in ``layout.inputs`` order, outputs as
    ``layout.outputs``. ``windows`` keeps one ``Window`` (buffers, captured graphs) per batch size;
    ``prefill_align``: prompts are left-padded to a multiple of it (``PREFILL_ALIGN`` with CUDA
    graphs, so that a few prefill graphs serve every prompt length; 1 otherwise)."""

    call: Callable
    layout: StepLayout
    device: str
    kind: str
    cuda_graph: bool = True
    windows: dict = field(default_factory=dict)
    prefill_align: int = 1


def load_step(session, cuda_graph: bool = True) -> TorchStep:
    """The torch program of ``session`` (``buildsys.load`` of a ``torch.exported`` or
    ``torch.aoti`` step artifact: checked) on the session's device. ``cuda_graph``: on CUDA,
    capture the decode step once and replay it (else launch its kernels every token)."""
    kind = session.artifact["kind"]
    if kind not in KINDS:
        raise BuildsysError(f"the static-window loop runs torch programs ({', '.join(KINDS)}); this artifact is "
                            f"{kind}", hint="use buildsys_hf.generate.generate, which runs any artifact")
    primary = next(f["name"] for f in session.artifact["files"] if f["role"] == "primary")
    path = str(session.directory / primary)
    device = session.device
    call = _exported(path, device) if kind == "torch.exported" else _aoti(path, device)
    layout = StepLayout.from_record(session.artifact)
    if layout.max_context is None:
        raise BuildsysError("the step artifact records no seq dim maximum, so the window size is unknown")
    graphed = cuda_graph and device == "cuda"
    return TorchStep(call, layout, device, kind, graphed, prefill_align=PREFILL_ALIGN if graphed else 1)


def _exported(path: str, device: str) -> Callable:
    from buildsys_torch.exported import module_on

    return module_on(Path(path), device)


def _aoti(path: str, device: str) -> Callable:
    import torch

    # single-threaded: no container locks or events while a CUDA graph is captured
    return torch._inductor.aoti_load_package(path, run_single_threaded=device == "cuda")


def generate_static(step: TorchStep, prompt_ids, max_new_tokens: int | None = None,
                    eos_token_id: int | None = None, *, attention_mask=None, pad_token_id: int | None = None):
    """Greedy decode through the static window of ``step`` (``load_step``). Arguments and result
    as ``generate.generate``: an int64 numpy array ``[batch, n]`` of new tokens, ``n`` at most
    ``max_new_tokens`` (fewer when every row ended). ``max_new_tokens=None``: as many as the
    context holds after the longest prompt."""
    import numpy as np
    import torch

    pad = pad_token_id if pad_token_id is not None else (eos_token_id if eos_token_id is not None else 0)
    ids, mask = _padded(prompt_ids, attention_mask, pad)
    count = fit(step.layout, ids.shape[1], max_new_tokens)
    window = step.windows.get(ids.shape[0]) or step.windows.setdefault(ids.shape[0], Window(step, ids.shape[0]))
    with torch.no_grad():
        window.prefill(torch.from_numpy(ids), torch.from_numpy(mask), eos_token_id, pad)
        for done in range(1, count):
            window.decode()
            if done % CHECK_EVERY == 0 and eos_token_id is not None and window.ended():
                break
        tokens = window.tokens()
    return tokens[:, :_ended_at(tokens, eos_token_id)].astype(np.int64)


def _padded(prompt_ids, attention_mask, pad: int):
    import numpy as np

    if attention_mask is not None:
        return np.asarray(prompt_ids, np.int64), np.asarray(attention_mask, np.int64)
    if hasattr(prompt_ids, "shape"):
        return np.asarray(prompt_ids, np.int64), np.ones(np.shape(prompt_ids), np.int64)
    return left_pad(prompt_ids, pad)


def fit(layout: StepLayout, prompt_length: int, max_new_tokens: int | None) -> int:
    """How many tokens to generate: ``max_new_tokens`` when the prompt and they fit the context
    (else the error names the lengths), or the room left after the prompt when None."""
    window = layout.max_context - 1
    if prompt_length > window:
        raise BuildsysError(f"a prompt of {prompt_length} tokens (the longest, padded) does not fit the static window "
                            f"of {window} cache slots (max_context {layout.max_context} - 1): at least one new token "
                            "must fit too", hint="shorten the prompt, or rebuild with a larger "
                                                 "model.generation.max_context (up to the model's positions)")
    if max_new_tokens is None:
        return layout.max_context - prompt_length
    check_context(layout, prompt_length, max_new_tokens)
    return max_new_tokens


def _ended_at(tokens, eos_token_id: int | None) -> int:
    """The number of steps ``generate()`` runs: up to the step where the last row ended."""
    if eos_token_id is None:
        return tokens.shape[1]
    hit = tokens == eos_token_id
    if not hit.any(axis=1).all():
        return tokens.shape[1]
    return int(hit.argmax(axis=1).max()) + 1


class Window:
    """The static state of one batch size: the cache windows, mask, token, positions, the rows
    that ended, the tokens chosen so far, and (CUDA) the captured decode step."""

    def __init__(self, step: TorchStep, batch: int):
        import torch

        layout, device = step.layout, step.device
        self.step, self.size = step, layout.max_context - 1
        dtype = getattr(torch, layout.dtype)
        self.past = {name: torch.zeros(batch, layout.kv_heads, self.size, layout.head_dim, dtype=dtype, device=device)
                     for name in layout.inputs if name.startswith(PAST)}
        long = dict(dtype=torch.int64, device=device)
        self.mask, self.ids, self.pos = (torch.zeros(batch, self.size + 1, **long), torch.zeros(batch, 1, **long),
                                         torch.zeros(batch, 1, **long))
        self.chosen, self.done = torch.zeros(batch, layout.max_context, **long), torch.zeros(batch, dtype=torch.bool,
                                                                                              device=device)
        self.count, self.eos, self.pad = torch.zeros(1, **long), torch.zeros((), **long), torch.zeros((), **long)
        self.graph, self.prefills, self.pool = None, {}, None

    def run(self, ids, mask, pos, past: dict) -> dict:
        given = {"input_ids": ids, "attention_mask": mask, "position_ids": pos, **past}
        missing = [name for name in self.step.layout.inputs if name not in given]
        if missing:
            raise BuildsysError(f"the step artifact has inputs the generation loop does not know: {', '.join(missing)}")
        from buildsys_torch.flat import flatten

        outputs = flatten(self.step.call(*[given[name] for name in self.step.layout.inputs]))
        return dict(zip(self.step.layout.outputs, outputs))

    def prefill(self, ids, mask, eos_token_id: int | None, pad: int) -> None:
        """Run the prompt (past 0), right-align its cache in the windows, choose the first token;
        with CUDA graphs, through the captured prefill of the prompt's padded length."""
        import torch

        self.eos.fill_(-1 if eos_token_id is None else eos_token_id)
        self.pad.fill_(pad)
        align = self.step.prefill_align
        length = min(-(-ids.shape[1] // align) * align, self.size)
        if length > ids.shape[1]:  # masked pad slots on the left, as any shorter row of the batch has
            extra = length - ids.shape[1]
            ids = torch.cat([torch.full((ids.shape[0], extra), pad, dtype=ids.dtype), ids], dim=1)
            mask = torch.cat([torch.zeros((mask.shape[0], extra), dtype=mask.dtype), mask], dim=1)
        if not self.step.cuda_graph:
            self.prefill_once(ids.to(self.step.device), mask.to(self.step.device))
            return
        if length not in self.prefills:
            self.prefills[length] = self._capture_prefill(length)
        graph, static_ids, static_mask = self.prefills[length]
        static_ids.copy_(ids)
        static_mask.copy_(mask)
        graph.replay()

    def prefill_once(self, ids, mask) -> None:
        """The prefill on device tensors, in place: what a prefill graph captures."""
        import torch

        length = ids.shape[1]
        pos = torch.where(mask == 0, 1, mask.cumsum(-1) - 1)
        empty = {name: buffer[:, :, :0] for name, buffer in self.past.items()}
        outputs = self.run(ids, mask, pos, empty)
        for name, buffer in self.past.items():
            buffer.zero_()
            buffer[:, :, self.size - length:] = outputs[PRESENT + name[len(PAST):]]
        self.mask.zero_()
        self.mask[:, self.size - length:self.size] = mask
        self.mask[:, self.size] = 1
        self.done.zero_()
        self.count.zero_()
        self.choose(outputs["logits"])
        self.pos.copy_(mask.sum(-1, keepdim=True))

    def choose(self, logits) -> None:
        """The greedy token of each row (``pad`` where the row ended) into ``ids`` and ``chosen``."""
        import torch

        token = torch.where(self.done, self.pad, logits[:, -1].argmax(-1))
        self.done |= token == self.eos
        self.chosen.index_copy_(1, self.count, token[:, None])
        self.count += 1
        self.ids.copy_(token[:, None])

    def step_once(self) -> None:
        """One decode step, in place: what the CUDA graph captures."""
        import torch

        outputs = self.run(self.ids, self.mask, self.pos, self.past)
        for name, buffer in self.past.items():
            buffer.copy_(outputs[PRESENT + name[len(PAST):]][:, :, 1:])  # the oldest slot leaves the window
        self.choose(outputs["logits"])
        self.mask.copy_(torch.cat([self.mask[:, 1:], self.mask[:, -1:]], dim=1))  # the last slot: the next token
        self.pos += 1

    def decode(self) -> None:
        if not self.step.cuda_graph:
            self.step_once()
            return
        if self.graph is None:
            self.graph = self._capture()
        self.graph.replay()

    def _capture(self):
        """Capture ``step_once``; its warm-up runs change the state, which is put back."""
        from buildsys_torch.cudagraph import capture

        state = [self.mask, self.ids, self.pos, self.chosen, self.done, self.count, *self.past.values()]
        saved = [tensor.clone() for tensor in state]
        graph, _ = capture(self.step_once, pool=self._pool())
        for tensor, value in zip(state, saved):
            tensor.copy_(value)
        return graph

    def _capture_prefill(self, length: int):
        """``(graph, ids, mask)``: the prefill of a ``[batch, length]`` prompt captured on static
        input buffers (the caller fills them, then replays; the prefill sets every state itself)."""
        import torch

        from buildsys_torch.cudagraph import capture

        long = dict(dtype=torch.int64, device=self.step.device)
        batch = self.ids.shape[0]
        ids, mask = torch.zeros(batch, length, **long), torch.ones(batch, length, **long)
        graph, _ = capture(lambda: self.prefill_once(ids, mask), pool=self._pool())
        return graph, ids, mask

    def _pool(self):
        import torch

        if self.pool is None:
            self.pool = torch.cuda.graph_pool_handle()
        return self.pool

    def ended(self) -> bool:
        return bool(self.done.all())

    def tokens(self):
        return self.chosen[:, :int(self.count)].cpu().numpy()
