"""The static-window decode loop (buildsys_hf.static) over the tiny-llama-gen example's
torch.exported artifact, on the CPU (no CUDA graph here: the same step runs uncaptured): the
eager model's generate() tokens for left-padded prompts of different lengths with an end of
sequence mid-way, a context that fills up, and the lengths that do not fit."""

from __future__ import annotations

import runpy
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import buildsys
from buildsys import BuildsysError
from buildsys.testing import ProjectDir

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
CONTEXT = 64  # tiny-llama-gen.yaml's generation.max_context: a window of 63 cache slots
PROMPTS = [[2, 30, 31, 32], [2, 7], [2, 9, 10, 11, 12, 13, 14]]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(artifact directory, eager model) of the shipped example, its exported target built once."""
    project = ProjectDir(tmp_path_factory.mktemp("static") / "project")
    (project.root / "models").mkdir(parents=True)
    shutil.copy(MANIFESTS / "tiny-llama-gen.yaml", project.root / "tiny-llama-gen.yaml")
    shutil.copy(MANIFESTS / "models" / "tiny_llama_gen.py", project.root / "models" / "tiny_llama_gen.py")
    folder = runpy.run_path(str(project.root / "models" / "tiny_llama_gen.py"))["main"](
        project.root / "models" / "tiny-llama-gen")
    project.cli("build", "tiny-llama-gen.yaml", "-t", "exported", env={"HF_HUB_OFFLINE": "1"},
                timeout=600).assert_ok()
    model = transformers.AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    return project.target_dir("tiny-llama-gen", "1.0.0", "exported"), model


@pytest.fixture(scope="module")
def step(built):
    from buildsys_hf.static import load_step

    return load_step(buildsys.load(built[0], device="cpu"))


def eager(model, prompts, max_new_tokens: int, eos: int | None):
    from buildsys_hf.generate import left_pad

    ids, mask = left_pad(prompts, 0)
    with torch.no_grad():
        out = model.generate(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                             max_new_tokens=max_new_tokens, min_new_tokens=0, do_sample=False, eos_token_id=eos,
                             pad_token_id=0)
    return out[:, ids.shape[1]:].tolist()


def mid_row_eos(model) -> int:
    """A token the second prompt's greedy continuation reaches only after a few steps, and the
    longest prompt's never: with it as the end of sequence one row ends mid-way, another not."""
    free = eager(model, PROMPTS, 20, None)
    for token in free[1][3:]:
        if token not in free[1][:3] and token not in free[2]:
            return token
    pytest.fail(f"no token ends row 1 mid-way without ending row 2: {free}")


def test_static_window_gives_generate_tokens_for_left_padded_prompts_with_an_end_mid_way(built, step):
    from buildsys_hf.generate import generate
    from buildsys_hf.static import generate_static

    directory, model = built
    eos = mid_row_eos(model)
    got = generate_static(step, PROMPTS, max_new_tokens=20, eos_token_id=eos, pad_token_id=0)
    wanted = eager(model, PROMPTS, 20, eos)
    assert got.tolist() == wanted
    ended = wanted[1].index(eos)
    assert 3 <= ended < 19 and set(wanted[1][ended + 1:]) == {0} and eos not in wanted[2]  # pads after the end
    session = buildsys.load(directory, device="cpu")  # and the numpy loop over the same artifact agrees
    assert generate(session, step.layout, PROMPTS, max_new_tokens=20, eos_token_id=eos,
                    pad_token_id=0).tolist() == wanted


def test_generation_stops_where_the_last_row_ends_as_generate_does(built, step):
    """One row whose end comes past the first look at the rows (every 16 steps): the tokens are cut
    right after it, not at the look."""
    from buildsys_hf.static import CHECK_EVERY, generate_static

    _, model = built
    free = eager(model, [PROMPTS[1]], 40, None)[0]
    late = next((i for i, t in enumerate(free) if i > CHECK_EVERY and t not in free[:i]), None)
    if late is None:
        pytest.skip(f"no new token after step {CHECK_EVERY} in {free}")
    got = generate_static(step, [PROMPTS[1]], max_new_tokens=40, eos_token_id=free[late], pad_token_id=0)
    assert got.tolist() == eager(model, [PROMPTS[1]], 40, free[late]) and got.shape == (1, late + 1)


def test_the_context_filling_up_ends_generation_with_every_slot_real_and_nothing_dropped(built, step):
    """max_new_tokens=None: as many tokens as the context holds after the longest prompt (7), all
    equal to generate()'s; at the end the longest row holds a real token in every slot."""
    from buildsys_hf.static import generate_static

    _, model = built
    got = generate_static(step, PROMPTS)
    assert got.shape == (3, CONTEXT - 7)
    assert got.tolist() == eager(model, PROMPTS, CONTEXT - 7, None)
    window = step.windows[3]
    assert bool(window.mask[2].all()) and int(window.mask[1].sum()) == CONTEXT - 5  # row 1: 5 pads left of it


def test_lengths_that_do_not_fit_the_window_are_refused_naming_them(step):
    from buildsys_hf.static import generate_static

    with pytest.raises(BuildsysError, match="a prompt of 64 tokens .* static window of 63 cache slots "
                                            r"\(max_context 64 - 1\)"):
        generate_static(step, [[2] * 64], max_new_tokens=1)
    with pytest.raises(BuildsysError, match="a prompt of 60 tokens and 5 new tokens need 65 positions, and the "
                                            "artifact holds 64"):
        generate_static(step, [[2] * 60], max_new_tokens=5)
    assert generate_static(step, [[2] * 60], max_new_tokens=4).shape == (1, 4)  # exactly full: allowed


def test_generate_text_decodes_through_the_static_window_like_the_numpy_loop(built, step):
    from buildsys_hf.text import generate_text

    session = buildsys.load(built[0], device="cpu")
    prompts = ["once upon a time there was", "engines are compiled"]
    assert generate_text(session, prompts, 12, step=step) == generate_text(session, prompts, 12)


def test_only_torch_programs_take_the_static_window():
    from buildsys_hf.static import load_step

    session = SimpleNamespace(artifact={"kind": "onnx", "files": []}, directory=Path("."), device="cpu")
    with pytest.raises(BuildsysError, match="runs torch programs .*this artifact is onnx"):
        load_step(session)


def test_the_window_runs_where_the_step_is_moved(built):
    """Every tensor of a decode step on the device the step was moved to. The meta device stands
    in for CUDA (none here): the first GPU run failed twice on what it checks — the program's
    lifted constants left on the CPU by module.to(), and a mask cast naming the CPU positionally."""
    from buildsys_hf.generate import StepLayout
    from buildsys_hf.static import TorchStep, Window, _exported

    session = buildsys.load(built[0], device="cpu")
    primary = next(f["name"] for f in session.artifact["files"] if f["role"] == "primary")
    step = TorchStep(_exported(str(built[0] / primary), "meta"), StepLayout.from_record(session.artifact), "meta",
                     "torch.exported", cuda_graph=False)
    window = Window(step, 2)
    with torch.no_grad():
        window.prefill(torch.tensor([[0, 2, 7], [2, 30, 31]]), torch.tensor([[0, 1, 1], [1, 1, 1]]), None, 0)
        for _ in range(3):
            window.decode()
    state = [window.ids, window.mask, window.pos, window.chosen, *window.past.values()]
    assert {t.device.type for t in state} == {"meta"}


class ReplayedCall:
    """Stands in for a CUDA graph here: ``replay()`` runs the captured function again on the same
    tensors, which is what replaying a graph does to them."""

    def __init__(self, function):
        self.function = function

    def replay(self):
        self.function()


def test_the_captured_prefill_and_decode_give_generate_tokens_whatever_the_prompt_lengths(built, monkeypatch):
    """The CUDA-graph path of the window with the capture stood in for (no GPU here): prompts of
    4, 7 and 60 tokens are left-padded to the 32-token alignment (60 to the 63 slots the window
    has), each padded length captured once, and every call's tokens are generate()'s — the captured
    prefill must reset everything the previous call left (count, ended rows, mask, stale prompt)."""
    import buildsys_torch.cudagraph
    from buildsys_hf.static import PREFILL_ALIGN, generate_static, load_step

    captured = []

    def fake_capture(step, warmup: int = 3, pool=None):
        for _ in range(warmup + 1):
            step()
        captured.append(pool)
        return ReplayedCall(step), None

    monkeypatch.setattr(buildsys_torch.cudagraph, "capture", fake_capture)
    monkeypatch.setattr(torch.cuda, "graph_pool_handle", lambda: ("pool",))
    _, model = built
    step = load_step(buildsys.load(built[0], device="cpu"))
    step.cuda_graph, step.prefill_align = True, PREFILL_ALIGN
    eos = mid_row_eos(model)
    for prompts, eos_token in ((PROMPTS, eos), (PROMPTS[::-1], None), (PROMPTS, eos)):
        got = generate_static(step, prompts, max_new_tokens=20, eos_token_id=eos_token, pad_token_id=0)
        assert got.tolist() == eager(model, prompts, 20, eos_token)
    window = step.windows[3]
    assert sorted(window.prefills) == [32] and window.graph is not None and len(captured) == 2
    assert len({id(pool) for pool in captured}) == 1  # the window's graphs share one pool
    assert generate_static(step, [[2] * 60], max_new_tokens=4).tolist() == eager(model, [[2] * 60], 4, None)
    assert sorted(step.windows[1].prefills) == [CONTEXT - 1]
