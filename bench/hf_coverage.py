"""Coverage: tiny-config transformers architectures through ``framework: huggingface`` manifests.

For each architecture: a tiny config (hidden 32, 2 layers where the family has those knobs) and
randomly initialised weights written with ``save_pretrained`` (plus a word-level tokenizer for
text models) into a temporary folder, a three-line manifest (no Python) with targets
torch.exported, onnx and onnx.ort, and a real ``buildsys build -k --json``. Offline
(HF_HUB_OFFLINE=1). Prints per target: validated / failed with the first line of the reason, and
writes bench/results/hf_coverage.md.

    python bench/hf_coverage.py                   # every architecture below
    python bench/hf_coverage.py --only bert vit   # some of them
    python bench/hf_coverage.py --only wavlm sew --keep   # rerun rows, keep the page's others
    python bench/hf_coverage.py -j 2 --workdir /tmp/hfcov   # keep the builds
    python bench/hf_coverage.py --parallel 6      # several architectures at once (many cores)
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import re
import runpy
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
TARGETS = ("exported", "onnx", "onnx-ort")
WORDS = sorted(set(re.findall(r"[a-z]+|[^\sa-z]", (
    "The build system turns trained models into deployable artifacts. A lockfile records exactly what "
    "was built and from what. Engines are compiled for the GPU they will run on. Short. "
    "a photo of a cat a photo of a dog a diagram").lower())))
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB = len(SPECIALS) + len(WORDS)

ENC = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 37}
TEXT = {**ENC, "vocab_size": VOCAB, "max_position_embeddings": 64}
DEC = {**TEXT, "num_key_value_heads": 1, "pad_token_id": 0}  # grouped-query attention where the family has it
MOE = {**DEC, "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 16}
VIS = {**ENC, "image_size": 32, "patch_size": 8}
AUDIO = {**ENC, "conv_dim": (32, 32), "conv_stride": (5, 4), "conv_kernel": (10, 4), "num_conv_pos_embeddings": 16,
         "num_conv_pos_embedding_groups": 2}
T5 = {"vocab_size": VOCAB, "d_model": 32, "d_kv": 16, "d_ff": 37, "num_layers": 2, "num_heads": 2}
# BART-style encoder-decoders (learned positions): the tokenizer's [PAD] 0, [CLS] 2, [SEP] 3 as pad, bos, eos
BART = {"vocab_size": VOCAB, "d_model": 32, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 2,
        "decoder_attention_heads": 2, "encoder_ffn_dim": 37, "decoder_ffn_dim": 37, "max_position_embeddings": 64,
        "pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 3, "decoder_start_token_id": 2,
        "forced_eos_token_id": None}
CNN = {"image_size": 32, "hidden_sizes": [8, 16], "depths": [1, 1]}
CONVNEXT = {**CNN, "num_stages": 2}  # its stage names come from num_stages (4), not from depths

# (name, model_type, task, config kwargs, extra: "text" -> a tokenizer is saved)
ARCHITECTURES = [
    ("bert", "bert", "feature-extraction", TEXT),
    ("bert-cls", "bert", "text-classification", TEXT),
    ("bert-mlm", "bert", "fill-mask", TEXT),
    ("bert-qa", "bert", "question-answering", TEXT),
    ("bert-ner", "bert", "token-classification", TEXT),
    ("roberta", "roberta", "feature-extraction", TEXT),
    ("distilbert", "distilbert", "feature-extraction", {"vocab_size": VOCAB, "dim": 32, "n_layers": 2, "n_heads": 2,
                                                        "hidden_dim": 37, "max_position_embeddings": 64}),
    ("albert", "albert", "feature-extraction", {**TEXT, "embedding_size": 16}),
    ("electra", "electra", "feature-extraction", {**TEXT, "embedding_size": 16}),
    ("deberta-v2", "deberta-v2", "feature-extraction", TEXT),
    ("xlm-roberta", "xlm-roberta", "feature-extraction", TEXT),
    ("mpnet", "mpnet", "feature-extraction", TEXT),
    ("mobilebert", "mobilebert", "feature-extraction", {**TEXT, "embedding_size": 16, "intra_bottleneck_size": 16,
                                                        "true_hidden_size": 16, "num_feedforward_networks": 1}),
    ("camembert", "camembert", "feature-extraction", TEXT),
    ("ernie", "ernie", "feature-extraction", TEXT),
    ("roformer", "roformer", "feature-extraction", {**TEXT, "embedding_size": 32}),
    ("data2vec-text", "data2vec-text", "feature-extraction", TEXT),
    ("megatron-bert", "megatron-bert", "feature-extraction", TEXT),
    ("layoutlm", "layoutlm", "feature-extraction", TEXT),
    ("modernbert", "modernbert", "feature-extraction", {**TEXT, "global_attn_every_n_layers": 2,
                                                        "pad_token_id": 0}),  # its default is past the vocab
    ("gpt2", "gpt2", "feature-extraction", {"vocab_size": VOCAB, "n_embd": 32, "n_layer": 2, "n_head": 2,
                                            "n_positions": 64}),
    ("llama", "llama", "feature-extraction", DEC),
    ("mistral", "mistral", "feature-extraction", DEC),
    ("qwen2", "qwen2", "feature-extraction", DEC),
    ("qwen3", "qwen3", "feature-extraction", DEC),
    ("gemma", "gemma", "feature-extraction", {**DEC, "head_dim": 16}),
    ("phi", "phi", "feature-extraction", TEXT),
    ("opt", "opt", "feature-extraction", {"vocab_size": VOCAB, "hidden_size": 32, "num_hidden_layers": 2,
                                          "num_attention_heads": 2, "ffn_dim": 37, "max_position_embeddings": 64,
                                          "word_embed_proj_dim": 32}),
    ("gpt_neox", "gpt_neox", "feature-extraction", TEXT),
    ("falcon", "falcon", "feature-extraction", {"vocab_size": VOCAB, "hidden_size": 32, "num_hidden_layers": 2,
                                                "num_attention_heads": 2}),
    ("bloom", "bloom", "feature-extraction", {"vocab_size": VOCAB, "hidden_size": 32, "n_layer": 2, "n_head": 2}),
    ("mixtral", "mixtral", "feature-extraction", {**DEC, "num_local_experts": 4, "num_experts_per_tok": 2}),
    ("qwen3_moe", "qwen3_moe", "feature-extraction", {**DEC, "num_experts": 4, "num_experts_per_tok": 2,
                                                      "moe_intermediate_size": 16}),
    ("phi3", "phi3", "feature-extraction", DEC),
    ("gemma2", "gemma2", "feature-extraction", {**DEC, "head_dim": 16}),
    ("stablelm", "stablelm", "feature-extraction", DEC),
    ("starcoder2", "starcoder2", "feature-extraction", DEC),
    ("olmo", "olmo", "feature-extraction", DEC),
    ("granite", "granite", "feature-extraction", DEC),
    ("gptj", "gptj", "feature-extraction", {"vocab_size": VOCAB, "n_embd": 32, "n_layer": 2, "n_head": 2,
                                            "n_positions": 64, "rotary_dim": 8}),
    ("qwen2_moe", "qwen2_moe", "feature-extraction", {**MOE, "shared_expert_intermediate_size": 16}),
    ("olmoe", "olmoe", "feature-extraction", MOE),
    ("t5-encoder", "t5", "feature-extraction", T5),
    ("mt5-encoder", "mt5", "feature-extraction", T5),
    ("umt5-encoder", "umt5", "feature-extraction", T5),
    ("vit", "vit", "image-classification", VIS),
    # two classes serve deit's task; from_config picks by config.architectures
    ("deit", "deit", "image-classification", {**VIS, "architectures": ["DeiTForImageClassification"]}),
    ("beit", "beit", "image-classification", VIS),
    ("dinov2", "dinov2", "image-feature-extraction", VIS),
    ("swin", "swin", "image-classification", {"image_size": 32, "patch_size": 4, "embed_dim": 16, "depths": [1, 1],
                                              "num_heads": [1, 2], "window_size": 4}),
    ("convnext", "convnext", "image-classification", CONVNEXT),
    ("convnextv2", "convnextv2", "image-classification", CONVNEXT),
    ("resnet", "resnet", "image-classification", {**CNN, "embedding_size": 8}),
    ("regnet", "regnet", "image-classification", {**CNN, "embedding_size": 8, "groups_width": 8}),
    ("mobilevit", "mobilevit", "image-classification", {"image_size": 32, "patch_size": 2, "hidden_sizes": [16, 16, 16],
                                                        "neck_hidden_sizes": [8, 8, 8, 8, 8, 8, 16]}),
    ("mobilenet_v2", "mobilenet_v2", "image-classification", {"image_size": 32, "depth_multiplier": 0.25}),
    ("efficientnet", "efficientnet", "image-classification", {"image_size": 32, "width_coefficient": 0.25,
                                                              "depth_coefficient": 0.25, "hidden_dim": 320}),  # 1280 x width
    ("segformer", "segformer", "image-classification", {"image_size": 32, "num_encoder_blocks": 2, "depths": [1, 1],
                                                        "sr_ratios": [2, 1], "hidden_sizes": [8, 16],
                                                        "num_attention_heads": [1, 1], "mlp_ratios": [2, 2]}),
    ("data2vec-vision", "data2vec-vision", "image-classification", VIS),
    ("dinov2-registers", "dinov2_with_registers", "image-classification", VIS),
    ("wav2vec2-ctc", "wav2vec2", "automatic-speech-recognition", {**AUDIO, "vocab_size": 12}),
    ("wav2vec2-cls", "wav2vec2", "audio-classification", AUDIO),
    ("hubert", "hubert", "audio-classification", AUDIO),
    ("wavlm", "wavlm", "audio-classification", AUDIO),
    ("data2vec-audio", "data2vec-audio", "audio-classification", AUDIO),
    ("unispeech", "unispeech", "audio-classification", AUDIO),
    ("unispeech-sat", "unispeech-sat", "audio-classification", AUDIO),
    ("sew", "sew", "audio-classification", {**AUDIO, "squeeze_factor": 2}),
    ("clip", "clip", "zero-shot-image-classification", {"text_config": {**TEXT, "max_position_embeddings": 32},
                                                        "vision_config": VIS, "projection_dim": 16}),
    ("siglip", "siglip", "zero-shot-image-classification", {"text_config": {**TEXT, "max_position_embeddings": 32},
                                                            "vision_config": VIS}),
    ("chinese_clip", "chinese_clip", "zero-shot-image-classification", {"text_config": TEXT, "vision_config": VIS,
                                                                        "projection_dim": 16}),
    ("blip", "blip", "zero-shot-image-classification", {"text_config": TEXT, "vision_config": VIS,
                                                        "projection_dim": 16}),
]
AUTO = {"feature-extraction": "AutoModel", "image-feature-extraction": "AutoModel",
        "text-classification": "AutoModelForSequenceClassification", "fill-mask": "AutoModelForMaskedLM",
        "question-answering": "AutoModelForQuestionAnswering", "token-classification": "AutoModelForTokenClassification",
        "image-classification": "AutoModelForImageClassification",
        "audio-classification": "AutoModelForAudioClassification", "automatic-speech-recognition": "AutoModelForCTC",
        "zero-shot-image-classification": "AutoModelForZeroShotImageClassification",
        "text-generation": "AutoModelForCausalLM", "text2text-generation": "AutoModelForSeq2SeqLM"}
_NAMES = [a[0] for a in ARCHITECTURES]
# --generation: the decoders with a KV cache step and the T5 and BART family encoder-decoders, each
# validated by greedy generation against the eager model's generate() (the source's generation
# defaults). Greedy decoding of a random model must not repeat one token from the start, or token
# equality checks little: the rows get a head of their own (tied random embeddings make the argmax
# the token just fed), and the T5s, which repeat one token whatever the head, weights of std 0.3.
SPREAD = {"t5": 0.3, "mt5": 0.3, "umt5": 0.3}
GENERATION = [(name, model_type, task, {**kwargs, "tie_word_embeddings": False}) for name, model_type, task, kwargs in (
              [(name, model_type, "text-generation", kwargs)
               for name, model_type, _, kwargs in ARCHITECTURES[_NAMES.index("gpt2"):_NAMES.index("olmoe") + 1]]
              + [(name.removesuffix("-encoder"), model_type, "text2text-generation",
                  {**kwargs, "decoder_start_token_id": 0})  # as t5-small's config.json has it
                 for name, model_type, _, kwargs in ARCHITECTURES if name.endswith("-encoder")]
              + [(model_type, model_type, "text2text-generation", kwargs) for model_type, kwargs in (
                  ("bart", BART), ("mbart", BART), ("marian", {**BART, "decoder_start_token_id": 0}),
                  ("pegasus", {**BART, "decoder_start_token_id": 0}), ("m2m_100", BART), ("blenderbot", BART),
                  ("blenderbot-small", BART), ("plbart", BART))])]
PAGES = {False: ("hf_coverage.md", "# Hugging Face coverage: tiny configs through `framework: huggingface`"),
         True: ("hf_generation_coverage.md", "# Hugging Face generation coverage: tiny decoders and "
                                              "encoder-decoders through `framework: huggingface`")}


def save_tokenizer(folder: Path) -> None:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(SPECIALS + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer = normalizers.Lowercase(), pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                       special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                            sep_token="[SEP]", mask_token="[MASK]", eos_token="[SEP]").save_pretrained(folder)


def save_model(folder: Path, model_type: str, task: str, kwargs: dict) -> None:
    import torch
    import transformers

    config = transformers.AutoConfig.for_model(model_type, **kwargs)
    torch.manual_seed(0)
    model = getattr(transformers, AUTO[task]).from_config(config).eval()
    if task.endswith("generation") and model_type in SPREAD:  # the T5 example's own spreading, at SPREAD's std
        runpy.run_path(str(REPO / "manifests" / "models" / "tiny_t5_gen.py"))["spread"](model, SPREAD[model_type])
    model.save_pretrained(folder)
    if "vocab_size" in kwargs or "text_config" in kwargs:
        save_tokenizer(folder)


def manifest(folder: Path, name: str, task: str) -> Path:
    path = folder.parent / f"{name}.yaml"
    targets = "\n".join(f"  {t}: {{format: {'onnx.ort' if t == 'onnx-ort' else 'torch.exported' if t == 'exported' else 'onnx'}}}"
                        for t in TARGETS)
    path.write_text(f"schema: 1\nname: {name.replace('_', '-')}\nversion: '1'\nmodel:\n  framework: huggingface\n"
                    f"  id: {folder.name}\n  task: {task}\ntargets:\n{targets}\n"
                    "validation:\n  fp32: {rtol: 1.0e-3, atol: 1.0e-4}\n")
    return path


def buildsys(*args: str, cwd: Path, timeout: float) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "BUILDSYS_OUT": str(cwd / "artifacts"),
           "BUILDSYS_CACHE_DIR": str(cwd / "artifacts" / ".cache")}
    json_flag = ["--json"] if args[0] == "build" else []  # plan prints JSON with --format json
    proc = subprocess.run([sys.executable, "-m", "buildsys", *args, *json_flag], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        return {"ok": False, "error": {"message": (proc.stderr.strip().splitlines() or ["no output"])[-1]}}


def first_line(text: str | None) -> str:
    line = next((s.strip() for s in (text or "").splitlines() if s.strip()), "")
    return line[:220]


ADVICE = ("of the default samples", "ways out", "the model constrains", "hint:")


def reason_of(text: str | None) -> str:
    """The failure's first line and, where the message gives them, which sizes it takes and its way out."""
    advice = [s.strip()[:200] for s in (text or "").splitlines() if s.strip().lower().startswith(ADVICE)]
    return " — ".join([first_line(text), *advice])


def outcomes(path: Path, build: dict, plan: dict) -> dict[str, str]:
    """target -> 'validated' or 'failed: <reason>'."""
    if not plan.get("ok", True) and "nodes" not in (plan.get("result") or {}):
        reason = first_line((plan.get("error") or {}).get("message"))
        return {t: f"refused: {reason}" for t in TARGETS}
    nodes = {n["id"]: n for n in (plan.get("result") or plan).get("nodes", [])}
    results = (build.get("result") or {}).get("nodes", {})
    out = {}
    for target in TARGETS:
        record = path.parent / "artifacts" / path.stem.replace("_", "-") / "1" / target / "artifact.json"
        if record.is_file() and json.loads(record.read_text()).get("validation", {}).get("status") == "passed":
            out[target] = "validated"
            continue
        chain = _chain(nodes, target)
        failed = [results[n] for n in chain if results.get(n, {}).get("status") == "failed"]
        why = reason_of(failed[0].get("error")) if failed else first_line((build.get("error") or {}).get("message"))
        out[target] = f"failed: {why or 'no artifact'}"
    return out


def _chain(nodes: dict, target: str) -> list[str]:
    """The nodes ``target`` needs: the one producing it, its validation, and their inputs."""
    producers = [n for n, node in nodes.items() if target in node.get("targets", [])]
    wanted = producers + [n for n, node in nodes.items()
                          if not node.get("targets") and set(node.get("inputs", [])) & set(producers)]
    seen: list[str] = []
    while wanted:
        node = wanted.pop(0)
        if node not in seen:
            seen.append(node)
            wanted += nodes.get(node, {}).get("inputs", [])
    return sorted(seen, key=list(nodes).index)


def run_one(workdir: Path, name: str, model_type: str, task: str, kwargs: dict, jobs: int) -> dict[str, str]:
    project = workdir / name
    project.mkdir(parents=True, exist_ok=True)
    try:
        with _SAVING:  # one thread at a time: transformers' lazy imports race, and the seed is global
            save_model(project / "model", model_type, task, kwargs)
    except Exception as exc:  # noqa: BLE001 -- a config this transformers cannot build is a row, not a crash
        return {t: f"not built: tiny config: {type(exc).__name__}: {first_line(str(exc))}" for t in TARGETS}
    path = manifest(project / "model", name, task)
    plan = buildsys("plan", path.name, "--format", "json", cwd=project, timeout=300)
    if "nodes" not in plan and "result" not in plan:
        plan = {"ok": True, "result": plan}
    build = buildsys("build", path.name, "-k", "-j", str(jobs), cwd=project, timeout=1800)
    return outcomes(path, build, plan)


def previous_rows(path: Path) -> list[tuple[str, str, str, dict, float]]:
    """The rows of an earlier results page, each target's verdict with its reason."""
    if not path.is_file():
        return []
    text = path.read_text()
    reasons = dict(re.findall(r"^- (\S+ / \S+): (.*)$", text, re.M))
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 4 + len(TARGETS) or not re.fullmatch(r"[\d.]+", cells[-1]):
            continue
        name, model_type, task, *verdicts, seconds = cells
        result = {t: v if v == "validated" else reasons.get(f"{name} / {t}", v) for t, v in zip(TARGETS, verdicts)}
        rows.append((name, model_type, task, result, float(seconds)))
    return rows


def write_markdown(rows: list[tuple[str, str, str, dict, float]], rerun: list[str] | None = None,
                   generation: bool = False) -> Path:
    """The results page; ``rerun``: the rows this run measured when it kept the others."""
    import torch
    import transformers

    page, title = PAGES[generation]
    lines = [title, "",
             (f"`python bench/hf_coverage.py{' --generation' if generation else ''}` on {platform.node() or 'this host'} ({os.cpu_count()} CPUs), "
              f"torch {torch.__version__}, transformers {transformers.__version__}; targets "
              f"{', '.join(TARGETS)}, each validated against eager on the source's samples "
              + ("(greedy generation, token for token against `generate()`). " if generation else
                 "(fp32: rtol 1e-3, atol 1e-4). ") + "Written by the script."), "",
             *([f"Rows {', '.join(rerun)} measured by `--only {' '.join(rerun)} --keep` on "
                f"{time.strftime('%Y-%m-%d', time.gmtime())}; the others are kept from this page's earlier run.", ""]
               if rerun else []),
             "| architecture | model_type | task | " + " | ".join(TARGETS) + " | s |",
             "|---|---|---|" + "---|" * len(TARGETS) + "---|"]
    reasons = []
    for name, model_type, task, result, seconds in rows:
        cells = []
        for target in TARGETS:
            verdict = result[target]
            if verdict == "validated":
                cells.append("validated")
            else:
                reasons.append(f"- {name} / {target}: {verdict}")
                cells.append(verdict.split(":")[0])
        lines.append(f"| {name} | {model_type} | {task} | " + " | ".join(cells) + f" | {seconds:.0f} |")
    total = len(rows) * len(TARGETS)
    ok = sum(r[3][t] == "validated" for r in rows for t in TARGETS)
    lines += ["", f"{ok} of {total} target builds validated.", "", "## Reasons", ""] + (reasons or ["(none)"])
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / page
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", help="architecture names (first column) to run")
    parser.add_argument("--workdir", type=Path, help="keep the projects here (default: a temporary folder)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="buildsys build -j for each architecture")
    parser.add_argument("--parallel", type=int, default=1, help="architectures built at once")
    parser.add_argument("--generation", action="store_true",
                        help="the generation rows instead: decoders as text-generation, T5s and BART-family "
                             "models as text2text-generation (bench/results/hf_generation_coverage.md)")
    parser.add_argument("--keep", action="store_true",
                        help="with --only: keep the other rows of the results page (it says which rows were rerun)")
    args = parser.parse_args()
    rows = GENERATION if args.generation else ARCHITECTURES
    chosen = [a for a in rows if not args.only or a[0] in args.only]
    names = [a[0] for a in chosen]
    rerun = names if args.keep and args.only else None
    with tempfile.TemporaryDirectory(prefix="hfcov-") as tmp:
        workdir = args.workdir or Path(tmp)
        done: list[tuple] = ([r for r in previous_rows(RESULTS / PAGES[args.generation][0]) if r[0] not in names]
                             if rerun else [])
        with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
            list(pool.map(lambda arch: timed(workdir, arch, args.jobs, done, rerun, rows), chosen))
        print(f"wrote {write_markdown(done, rerun, rows is GENERATION).relative_to(REPO)}")
    return 0


_WRITING, _SAVING = threading.Lock(), threading.Lock()


def timed(workdir: Path, arch: tuple, jobs: int, done: list[tuple], rerun: list[str] | None = None,
          rows: list[tuple] = ARCHITECTURES) -> None:
    """Build one architecture; rewrite the results page with every row so far (a run cut short
    still leaves its finished rows), in the order of ARCHITECTURES."""
    name, model_type, task, kwargs = arch
    start = time.monotonic()
    result = run_one(workdir, name, model_type, task, kwargs, jobs)
    print(f"{name:16} {task:32} " + "  ".join(f"{t}: {result[t][:90]}" for t in TARGETS), flush=True)
    with _WRITING:
        done.append((name, model_type, task, result, time.monotonic() - start))
        done.sort(key=lambda row: [a[0] for a in rows].index(row[0]))
        write_markdown(done, rerun, rows is GENERATION)


if __name__ == "__main__":
    sys.exit(main())
