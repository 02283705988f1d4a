"""Checkpoints: :func:`load_pretrained` and the import of the official Emotion-LLaMA weights.

The folder format itself (``config.json`` + ``model.safetensors``, projector + LoRA only, loaded
strictly) lives in :mod:`emollama.model.weights`; its names are re-exported here, where callers
have always imported them. This module sits above both :mod:`~emollama.model.weights` and
:mod:`~emollama.model.emotion_llama`, and neither imports it back.

:func:`convert_official` maps an official Emotion-LLaMA ``.pth`` (MiniGPT-v2 key names, peft 0.2
LoRA naming with or without the ``.default`` adapter segment) onto this format.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from emollama.errors import ModelUnavailableError
from emollama.model.config import EmotionLlamaConfig
from emollama.model.emotion_llama import EmotionLlama
from emollama.model.weights import (
    CONFIG_NAME,
    FORMAT_TAG,
    WEIGHTS_NAME,
    CheckpointMismatchError,
    absolutise_paths,
    canonical_key,
    load_trainable,
    preview,
    save_pretrained,
    write_folder,
)

__all__ = [
    "CONFIG_NAME",
    "FORMAT_TAG",
    "WEIGHTS_NAME",
    "CheckpointMismatchError",
    "ConversionReport",
    "canonical_key",
    "convert_official",
    "load_pretrained",
    "load_trainable",
    "map_official_state",
    "read_official",
    "save_pretrained",
]


# ------------------------------------------------------------------------------------------- load
def load_pretrained(
    folder: str | Path, device: str | torch.device = "cpu", dtype: str | None = None
) -> EmotionLlama:
    """A folder written by ``save_pretrained`` or :func:`convert_official`, loaded strictly."""
    return EmotionLlama.from_pretrained(folder, device=device, dtype=dtype)


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
            f"{source}: {len(unknown)} key(s) with no known mapping: {preview(sorted(unknown))}."
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
    absolutise_paths(cfg)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_folder(out, {k: v.contiguous() for k, v in state.items()}, cfg)
    (out / "conversion.json").write_text(json.dumps(report.__dict__, indent=2) + "\n", encoding="utf-8")
    return report
