"""The model folder: ``config.json`` + ``model.safetensors`` (projector + LoRA only).

This module knows the files and the strict key/shape check but not the model class: it works on
any ``nn.Module`` whose trainable parameters are what a folder stores. That keeps the imports
one-way: :mod:`emollama.model.emotion_llama` builds ``EmotionLlama.from_pretrained`` /
``save_pretrained`` on it, and :mod:`emollama.model.checkpoint` (``load_pretrained``, the
official-weights import) builds on both.

Loading is strict. Every key the model expects must be in the file, every key in the file must be
used, and shapes must agree; otherwise :class:`CheckpointMismatchError` lists what is missing and
unexpected. (The original loads with ``strict=False``; a peft-version rename of the LoRA keys then
leaves the adapters untrained without a word.)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from emollama.errors import ModelUnavailableError
from emollama.model.config import EmotionLlamaConfig

if TYPE_CHECKING:
    from transformers import PreTrainedModel

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_TAG = "emollama-emotion-llama/1"


class CheckpointMismatchError(ModelUnavailableError):
    """A checkpoint's keys or shapes do not match the configured model."""


class SavableModel(Protocol):
    """What :func:`save_pretrained` needs of a model (``EmotionLlama`` has it)."""

    cfg: EmotionLlamaConfig
    llm: PreTrainedModel

    def trainable_state_dict(self) -> dict[str, torch.Tensor]: ...


def canonical_key(name: str) -> str:
    """``llm.….q_proj.lora_A.default.weight`` → ``llm.….q_proj.lora_A.weight`` (peft-version independent)."""
    return name.replace(".lora_A.default.", ".lora_A.").replace(".lora_B.default.", ".lora_B.")


def preview(keys: list[str], limit: int = 10) -> str:
    """The first few keys of a long list, so an error message stays one readable line."""
    if not keys:
        return "none"
    more = f" … (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


# ------------------------------------------------------------------------------------------- save
def save_pretrained(
    model: SavableModel,
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
    absolutise_paths(cfg)
    if save_backbones:
        _save_llm_base(model, folder / "llm")
        if processor is not None:
            processor.save_pretrained(folder / "llm")
        cfg.llm.path, cfg.llm.gguf, cfg.llm.random_init, cfg.llm.tokenizer_path = "llm", None, None, None
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
    write_folder(folder, state, cfg)
    return folder


def write_folder(folder: Path, state: dict[str, torch.Tensor], cfg: EmotionLlamaConfig) -> None:
    """The two files of every model folder, written the same way by saving and by conversion.

    ``cfg``'s paths must already be absolute or relative to ``folder``: its base directory is
    dropped so the folder can be moved.
    """
    save_file(state, str(folder / WEIGHTS_NAME), metadata={"format": FORMAT_TAG})
    cfg.base_dir = None
    cfg.to_json(folder / CONFIG_NAME)


def _save_llm_base(model: SavableModel, target: Path) -> None:
    """The LM's own weights without the LoRA tensors, as a plain HF folder."""
    state = {k: v for k, v in model.llm.state_dict().items() if "lora_" not in k}
    state = {k.replace(".base_layer.", "."): v for k, v in state.items()}
    model.llm.save_pretrained(str(target), state_dict=state)


def absolutise_paths(cfg: EmotionLlamaConfig) -> None:
    """Make paths independent of the old base directory before the config moves elsewhere."""
    cfg.llm.path = _abs(cfg, cfg.llm.path)
    if cfg.llm.gguf not in (None, "smollm2"):  # `smollm2` names the packaged file, wherever it is installed
        cfg.llm.gguf = _abs(cfg, cfg.llm.gguf)
    cfg.llm.tokenizer_path = _abs(cfg, cfg.llm.tokenizer_path)
    cfg.prompt.instructions = _abs(cfg, cfg.prompt.instructions)
    for sub in (cfg.global_encoder, cfg.local_encoder, cfg.temporal_encoder, cfg.audio_encoder):
        if sub is not None:
            sub.path = _abs(cfg, sub.path)


def _abs(cfg: EmotionLlamaConfig, path: str | None) -> str | None:
    resolved = cfg.resolve(path)
    return str(resolved.resolve()) if resolved is not None else None


# ------------------------------------------------------------------------------------------- load
def read_config(folder: Path, dtype: str | None = None) -> EmotionLlamaConfig:
    """The folder's config (``dtype`` overriding ``llm.dtype``), after checking both files exist.

    Both files are checked before anything is built, so an incomplete folder fails at once
    rather than after the backbone has loaded.
    """
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (folder / name).is_file():
            raise ModelUnavailableError(
                f"Emotion-LLaMA model folder {folder} lacks {name}: expected {CONFIG_NAME} + {WEIGHTS_NAME} "
                "(written by save_pretrained or `emollama convert-official`)."
            )
    cfg = EmotionLlamaConfig.from_file(folder / CONFIG_NAME)
    if dtype is not None:
        cfg.llm.dtype = dtype  # type: ignore[assignment]
    return cfg


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The stored projector/LoRA tensors, for :func:`load_trainable`."""
    return load_file(str(folder / WEIGHTS_NAME))


def load_trainable(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
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
            f"checkpoint does not match the model config: {len(missing)} missing ({preview(missing)}); "
            f"{len(unexpected)} unexpected ({preview(unexpected)}); "
            f"{len(bad)} wrong shape ({preview(bad)})."
        )
    with torch.no_grad():
        for key, param in params.items():
            param.copy_(state[key].to(param.dtype))
