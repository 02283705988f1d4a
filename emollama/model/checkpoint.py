"""Checkpoints: a folder with ``config.json`` + ``model.safetensors`` (projector + LoRA only).

Loading is strict. Every key the model expects must be in the file, every key in the file must be
used, and shapes must agree; otherwise :class:`CheckpointMismatchError` lists what is missing and
unexpected. (The original loads with ``strict=False``; a peft-version rename of the LoRA keys then
leaves the adapters untrained without a word.)

:func:`convert_official` maps an official Emotion-LLaMA ``.pth`` (MiniGPT-v2 key names, peft 0.2
LoRA naming with or without the ``.default`` adapter segment) onto this format.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from emollama.errors import ModelUnavailableError
from emollama.model.config import EmotionLlamaConfig
from emollama.model.emotion_llama import EmotionLlama, canonical_key

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_TAG = "emollama-emotion-llama/1"


class CheckpointMismatchError(ModelUnavailableError):
    """A checkpoint's keys or shapes do not match the configured model."""


def _preview(keys: list[str], limit: int = 10) -> str:
    if not keys:
        return "none"
    more = f" … (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


# ------------------------------------------------------------------------------------------- save
def save_pretrained(
    model: EmotionLlama,
    folder: str | Path,
    *,
    save_backbones: bool = False,
    processor: Any | None = None,
    encoders: Any | None = None,
) -> Path:
    """Write the trainable weights and the config; optionally the backbones too.

    ``save_backbones=True`` also writes the LLM (without LoRA), its tokenizer and the encoders in
    their standard formats under the folder, and points the config at them: a self-contained model
    folder, which is how random-weight test models are handed to the recogniser.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = EmotionLlamaConfig.from_dict(model.cfg.to_dict(), base_dir=model.cfg.base_dir)
    _absolutise_paths(cfg)
    if save_backbones:
        _save_llm_base(model, folder / "llm")
        if processor is not None:
            processor.save_pretrained(folder / "llm")
        cfg.llm.path, cfg.llm.random_init, cfg.llm.tokenizer_path = "llm", None, None
        if encoders is not None:
            for dotted, rel in encoders.save_pretrained(folder).items():
                section, _ = dotted.split(".")
                sub = getattr(cfg, section)
                sub.path = rel
                if not (section == "global_encoder" and sub.kind == "eva_vit_g"):
                    sub.random_init = None  # the HF folder carries its own config.json
    instructions = cfg.resolve(cfg.prompt.instructions)
    if instructions is not None:
        (folder / "instructions.yaml").write_text(instructions.read_text(encoding="utf-8"), encoding="utf-8")
        cfg.prompt.instructions = "instructions.yaml"
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.trainable_state_dict().items()}
    save_file(state, str(folder / WEIGHTS_NAME), metadata={"format": FORMAT_TAG})
    cfg.base_dir = None
    cfg.to_json(folder / CONFIG_NAME)
    return folder


def _save_llm_base(model: EmotionLlama, target: Path) -> None:
    """The LM's own weights without the LoRA tensors, as a plain HF folder."""
    state = {k: v for k, v in model.llm.state_dict().items() if "lora_" not in k}
    state = {k.replace(".base_layer.", "."): v for k, v in state.items()}
    model.llm.save_pretrained(str(target), state_dict=state)


def _absolutise_paths(cfg: EmotionLlamaConfig) -> None:
    """Make paths independent of the old base directory before the config moves elsewhere."""
    cfg.llm.path = _abs(cfg, cfg.llm.path)
    cfg.llm.tokenizer_path = _abs(cfg, cfg.llm.tokenizer_path)
    cfg.prompt.instructions = _abs(cfg, cfg.prompt.instructions)
    for sub in (cfg.global_encoder, cfg.local_encoder, cfg.temporal_encoder, cfg.audio_encoder):
        if sub is not None:
            sub.path = _abs(cfg, sub.path)


def _abs(cfg: EmotionLlamaConfig, path: str | None) -> str | None:
    resolved = cfg.resolve(path)
    return str(resolved.resolve()) if resolved is not None else None


# ------------------------------------------------------------------------------------------- load
def load_trainable(model: EmotionLlama, state: dict[str, torch.Tensor]) -> None:
    """Copy ``state`` into the projector/LoRA parameters; strict on keys and shapes."""
    params = {canonical_key(n): p for n, p in model.named_parameters() if p.requires_grad}
    missing = sorted(set(params) - set(state))
    unexpected = sorted(set(state) - set(params))
    bad = sorted(
        f"{k} {tuple(state[k].shape)}≠{tuple(params[k].shape)}"
        for k in set(params) & set(state)
        if state[k].shape != params[k].shape
    )
    if missing or unexpected or bad:
        raise CheckpointMismatchError(
            f"checkpoint does not match the model config: {len(missing)} missing ({_preview(missing)}); "
            f"{len(unexpected)} unexpected ({_preview(unexpected)}); "
            f"{len(bad)} wrong shape ({_preview(bad)})."
        )
    with torch.no_grad():
        for key, param in params.items():
            param.copy_(state[key].to(param.dtype))


def load_pretrained(
    folder: str | Path, device: str | torch.device = "cpu", dtype: str | None = None
) -> EmotionLlama:
    folder = Path(folder)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (folder / name).is_file():
            raise ModelUnavailableError(
                f"Emotion-LLaMA model folder {folder} lacks {name}: expected {CONFIG_NAME} + {WEIGHTS_NAME} "
                "(written by save_pretrained or `emollama convert-official`)."
            )
    cfg = EmotionLlamaConfig.from_file(folder / CONFIG_NAME)
    if dtype is not None:
        cfg.llm.dtype = dtype  # type: ignore[assignment]
    model = EmotionLlama.from_config(cfg, device=device)
    load_trainable(model, load_file(str(folder / WEIGHTS_NAME)))
    return model


# ------------------------------------------------------------------------------------------- convert
_PROJ = {
    "llama_proj": "projector.global_patches",
    "cls_tk_llama_proj": "projector.global_cls",
    "feats_llama_proj1": "projector.local",
    "feats_llama_proj2": "projector.temporal",
    "feats_llama_proj3": "projector.audio",
}
_LORA = re.compile(r"^llama_model\.base_model\.model\.(?P<path>.+)\.lora_(?P<ab>[AB])(?:\.default)?\.weight$")
_LORA_LAYER = re.compile(r"layers\.(\d+)\.(.+)$")


@dataclass
class ConversionReport:
    """What :func:`convert_official` did, written next to the weights as ``conversion.json``."""

    source: str
    mapped: int = 0
    lora_r: int | None = None
    lora_layers: int = 0
    lora_modules: list[str] = field(default_factory=list)
    ignored: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def map_official_state(
    state: dict[str, torch.Tensor], source: str = ""
) -> tuple[dict[str, torch.Tensor], ConversionReport]:
    """Rename official keys to ours; unknown keys are an error, the vestigial head is dropped."""
    report = ConversionReport(source=source)
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, tensor in state.items():
        if not isinstance(tensor, torch.Tensor):
            unknown.append(key)
            continue
        head, _, rest = key.partition(".")
        if head in _PROJ and rest in ("weight", "bias"):
            out[f"{_PROJ[head]}.{rest}"] = tensor
        elif (m := _LORA.match(key)) is not None:
            out[f"llm.{m['path']}.lora_{m['ab']}.weight"] = tensor
        elif head == "attention":
            report.ignored[key] = "vestigial fusion head of the original code (never used by the LM)"
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointMismatchError(
            f"{source}: {len(unknown)} key(s) with no known mapping: {_preview(sorted(unknown))}."
        )
    if report.ignored:
        report.notes.append(
            f"ignored {len(report.ignored)} `attention.*` tensors: the original's unused "
            "emotion-classification head, which no forward pass reads."
        )
    lora_a = {k: v for k, v in out.items() if k.endswith("lora_A.weight")}
    ranks = {int(v.shape[0]) for v in lora_a.values()}
    if len(ranks) > 1:
        raise CheckpointMismatchError(f"{source}: LoRA ranks differ across layers: {sorted(ranks)}.")
    report.lora_r = ranks.pop() if ranks else None
    layers: set[int] = set()
    modules: set[str] = set()
    for k in lora_a:
        if (m := _LORA_LAYER.search(k.removesuffix(".lora_A.weight"))) is not None:
            layers.add(int(m[1]))
            modules.add(m[2].rsplit(".", 1)[-1])
    for k in lora_a:
        if k.replace("lora_A", "lora_B") not in out:
            raise CheckpointMismatchError(f"{source}: {k} has no matching lora_B.")
    report.lora_layers = len(layers)
    report.lora_modules = sorted(modules)
    report.mapped = len(out)
    return out, report


def read_official(path: str | Path, trust_pickle: bool = False) -> dict[str, torch.Tensor]:
    """The ``model`` dict of an official ``.pth`` (``{"model": …, "optimizer": …}`` or a bare dict)."""
    path = Path(path)
    if not path.is_file():
        raise ModelUnavailableError(
            f"Official checkpoint not found: {path} (a .pth such as Emoation_LLaMA.pth)."
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except Exception as exc:  # weights_only refuses pickled config objects
        if trust_pickle:
            raise
        raise ModelUnavailableError(
            f"{path} holds more than tensors and plain containers and was not unpickled for safety; "
            "rerun with --trust-pickle if you trust the file."
        ) from exc
    state = obj.get("model", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise CheckpointMismatchError(f"{path}: expected a dict with a `model` state dict.")
    return state


def convert_official(
    ckpt: str | Path, out: str | Path, cfg: EmotionLlamaConfig, trust_pickle: bool = False
) -> ConversionReport:
    """Official ``.pth`` → ``out/{config.json, model.safetensors, conversion.json}``.

    The projector widths in the checkpoint must match ``cfg``; the LoRA rank is taken from the
    checkpoint (the released weights use r=64, alpha=16). Full strictness against the actual
    backbone (layer count, hidden size) is enforced when the folder is loaded.
    """
    state, report = map_official_state(read_official(ckpt, trust_pickle), source=str(ckpt))
    pj = cfg.projector
    expected_in = {
        "projector.global_patches.weight": pj.global_dim * pj.merge,
        "projector.global_cls.weight": pj.global_dim,
        "projector.local.weight": pj.local_dim,
        "projector.temporal.weight": pj.temporal_dim,
        "projector.audio.weight": pj.audio_dim,
    }
    missing = [k for k in expected_in if k not in state]
    if missing:
        raise CheckpointMismatchError(f"{ckpt}: missing projection weights: {', '.join(missing)}.")
    wrong = [
        f"{k} has input width {state[k].shape[1]}, config says {w}"
        for k, w in expected_in.items()
        if state[k].shape[1] != w
    ]
    if wrong:
        raise CheckpointMismatchError(
            f"{ckpt}: projector widths do not match the config: {'; '.join(wrong)}."
        )
    cfg = EmotionLlamaConfig.from_dict(cfg.to_dict(), base_dir=cfg.base_dir)
    if report.lora_r is None:
        cfg.lora.enabled = False
        report.notes.append("no LoRA tensors found: LoRA disabled in the written config.")
    else:
        if report.lora_r != cfg.lora.r:
            report.notes.append(
                f"lora.r set to {report.lora_r} from the checkpoint (config had {cfg.lora.r})."
            )
        cfg.lora.enabled, cfg.lora.r = True, report.lora_r
        cfg.lora.target_modules = report.lora_modules
    _absolutise_paths(cfg)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in state.items()},
        str(out / WEIGHTS_NAME),
        metadata={"format": FORMAT_TAG},
    )
    cfg.base_dir = None
    cfg.to_json(out / CONFIG_NAME)
    (out / "conversion.json").write_text(json.dumps(report.__dict__, indent=2) + "\n", encoding="utf-8")
    return report
