"""The four frozen encoders: media tensors in, one feature tensor out each.

Each wrapper loads from a local folder/file in its standard format (HF ``from_pretrained`` folder,
LAVIS ``eva_vit_g.pth``), or builds random weights from a config for tests and benchmarks, and
exposes one call. Pooling follows the paper's defaults:

* global: one frame → every patch token (merged into LLM tokens by the projector) + the CLS token,
  both after a frozen ``ln_vision`` LayerNorm as in BLIP-2/MiniGPT-v2;
* local: each face crop → one vector (mean of patch tokens, or CLS), averaged over crops;
* temporal: a fixed-length stack of face crops → mean of all tokens;
* audio: the whole waveform → mean over time of the last hidden layer.

A missing modality (no face, no audio track) yields a zero vector so that the token layout never
changes; the projector then contributes only its bias for that slot, or its learned "absent"
embedding when ``projector.absent_embeddings`` is on.

The laptop-sized kinds (``emotion-llama-mini``) put the project's shipped heads in the same slots:
``face_cnn`` (local: the face head's penultimate layer on the most expressive crop), ``face_track``
(temporal: the face head and the AU intensities pooled over the face track) and ``whisper_base``
(audio: the voice head's Whisper-base layers). Nothing in them is trained here; they are frozen
like the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, HubertModel, VideoMAEModel, ViTMAEModel

from emollama.errors import ModelUnavailableError
from emollama.model.config import (
    AudioEncoderConfig,
    ConfigError,
    EmotionLlamaConfig,
    EvaVitConfig,
    GlobalEncoderConfig,
    LocalEncoderConfig,
    TemporalEncoderConfig,
)
from emollama.model.emotion_llama import MediaFeatures, seeded_random_init, torch_dtype
from emollama.model.eva_vit import EvaViT, load_eva_vit


def _require_dir(path: Path | None, what: str, key: str) -> Path:
    if path is None or not (path / "config.json").is_file():
        where = str(path) if path is not None else f"<set {key} in the model config>"
        raise ModelUnavailableError(
            f"{what} weights not found: expected a Hugging Face folder with config.json at {where} ({key})."
        )
    return path


def _hf_model(
    cls: type,
    cfg_path: Path | None,
    random_init: dict[str, Any] | None,
    what: str,
    key: str,
    dtype: torch.dtype,
    **overrides: Any,
) -> nn.Module:
    """``cls.from_pretrained(folder)`` or, with no folder configured, ``cls(random config)``."""
    if cfg_path is None and random_init is not None:
        kwargs = dict(random_init)
        config = AutoConfig.for_model(kwargs.pop("model_type"), **kwargs, **overrides)
        with seeded_random_init():
            model = cls(config) if cls is not AutoModel else AutoModel.from_config(config)
        return model.to(dtype)
    folder = _require_dir(cfg_path, what, key)
    loader = cls.from_pretrained
    return loader(str(folder), dtype=dtype, **overrides)


def _freeze(module: nn.Module) -> nn.Module:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


class GlobalEncoder(nn.Module):
    """One frame ``[B, 3, S, S]`` → (patches ``[B, N, D]``, cls ``[B, D]``) after ``ln_vision``."""

    def __init__(self, tower: nn.Module, dim: int, kind: str, num_patches: int) -> None:
        super().__init__()
        self.tower = tower
        self.kind = kind
        self.num_patches = num_patches
        # BLIP-2 puts a LayerNorm between the ViT and the language side; MiniGPT-v2 keeps it fresh
        # (weight 1, bias 0) and frozen, so it is a parameter-free normalisation in practice.
        self.ln_vision = nn.LayerNorm(dim)

    @torch.no_grad()
    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.kind == "eva_vit_g":
            tokens = self.tower(pixels)
        else:
            tokens = self.tower(pixel_values=pixels).last_hidden_state
        tokens = self.ln_vision(tokens.to(self.ln_vision.weight.dtype))
        if tokens.shape[1] == self.num_patches + 1:  # CLS first (EVA, CLIP, ViT)
            return tokens[:, 1:], tokens[:, 0]
        if tokens.shape[1] == self.num_patches:  # towers without CLS (SigLIP): mean stands in
            return tokens, tokens.mean(dim=1)
        raise ValueError(
            f"global encoder returned {tokens.shape[1]} tokens, expected {self.num_patches}(+1)."
        )

    @classmethod
    def from_config(cls, cfg: GlobalEncoderConfig, model_cfg: EmotionLlamaConfig) -> GlobalEncoder:
        dtype = torch_dtype(cfg.dtype)
        path = model_cfg.resolve(cfg.path)
        if cfg.kind == "eva_vit_g":
            eva_cfg = EvaVitConfig(**{**(cfg.random_init or {}), "image_size": cfg.image_size})
            if path is None and cfg.random_init is not None:
                with seeded_random_init():
                    tower: nn.Module = EvaViT(eva_cfg)
            else:
                if path is None:
                    raise ModelUnavailableError(
                        "EVA ViT-g weights not configured: set global_encoder.path to LAVIS's eva_vit_g.pth."
                    )
                tower = load_eva_vit(path, eva_cfg)
            dim = eva_cfg.embed_dim
        else:
            tower = _hf_model(
                AutoModel, path, cfg.random_init, "Global vision tower", "global_encoder.path", dtype
            )
            if hasattr(tower, "vision_model") and not hasattr(tower.config, "image_size"):
                tower = tower.vision_model  # a full CLIP/SigLIP folder: keep the vision half only
            dim = tower.config.hidden_size
        enc = cls(tower.to(dtype), dim, cfg.kind, model_cfg.projector.global_patches)
        return _freeze(enc.to(dtype))


class LocalEncoder(nn.Module):
    """Face crops ``[F, 3, s, s]`` of one clip → ``[D]`` (per-crop vectors averaged)."""

    def __init__(self, model: ViTMAEModel, pool: str) -> None:
        super().__init__()
        self.model = model
        self.pool = pool

    @torch.no_grad()
    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        # mask_ratio 0 keeps every patch, but ViT-MAE still shuffles them by random noise: the mean then
        # differs in its last bits from run to run (and draws from the caller's RNG). Increasing noise keeps
        # the raster order, so one clip always gives the same features.
        size = self.model.config.patch_size
        n = (crops.shape[-2] // size) * (crops.shape[-1] // size)
        order = torch.arange(n, device=crops.device, dtype=torch.float32).expand(crops.shape[0], n)
        hidden = self.model(pixel_values=crops, noise=order).last_hidden_state
        per_crop = hidden[:, 0] if self.pool == "cls" else hidden[:, 1:].mean(dim=1)
        return per_crop.mean(dim=0)

    @classmethod
    def from_config(cls, cfg: LocalEncoderConfig, model_cfg: EmotionLlamaConfig) -> LocalEncoder:
        model = _hf_model(
            ViTMAEModel,
            model_cfg.resolve(cfg.path),
            cfg.random_init,
            "Local (ViT-MAE) encoder",
            "local_encoder.path",
            torch_dtype(cfg.dtype),
            mask_ratio=0.0,
        )
        return _freeze(cls(model, cfg.pool))


class FaceHeadLocalEncoder(nn.Module):
    """Face crops ``[F, 1, 48, 48]`` (the face head's input) → the penultimate layer on the peak crop.

    The peak is the crop the head finds least neutral: for a talking face most frames are close to
    neutral, and averaging them would wash out the one expression that matters.
    """

    def __init__(self, expression: Any) -> None:
        super().__init__()
        self.network = expression.network
        self.tta_flip = expression.tta_flip
        self.neutral = list(expression.labels).index("neutral") if "neutral" in expression.labels else None
        self.dim = int(self.network.widths[-1])

    @torch.no_grad()
    def penultimate_and_probs(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per crop: the pooled features and the class probabilities (flip-averaged when the head is)."""
        x = crops.float()
        if self.tta_flip:
            x = torch.cat([x, x.flip(-1)])
        hidden = self.network.features(x.contiguous(memory_format=torch.channels_last)).mean(dim=(2, 3))
        probs = self.network.head(hidden).softmax(-1)
        if self.tta_flip:
            n = crops.shape[0]
            hidden, probs = (hidden[:n] + hidden[n:]) / 2, (probs[:n] + probs[n:]) / 2
        return hidden, probs

    @torch.no_grad()
    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        hidden, probs = self.penultimate_and_probs(crops)
        peak = 0 if self.neutral is None else int(probs[:, self.neutral].argmin())
        return hidden[peak]

    @classmethod
    def load(cls) -> FaceHeadLocalEncoder:
        from emollama.heads.face import load_expression_model

        return _freeze(cls(load_expression_model()))


#: Scale of the AU intensities (0–5) to 0–1 in the ``face_track`` features.
AU_SCALE = 5.0


def face_track_dim(face_dim: int, n_classes: int, n_aus: int) -> int:
    """Width of the ``face_track`` vector: mean and std of features, mean and max of probs and AUs."""
    return 2 * face_dim + 2 * n_classes + 2 * n_aus


class FaceTrackTemporalEncoder(nn.Module):
    """A face track (crops ``[T, 1, 48, 48]`` + AU intensities ``[T, A]``) → one pooled vector.

    Mean and standard deviation of the face head's penultimate features over the crops, mean and
    maximum of its probabilities, mean and maximum of the AU intensities (absent AUs count as 0).
    """

    def __init__(self, face: FaceHeadLocalEncoder, n_aus: int) -> None:
        super().__init__()
        self.face = face
        self.n_aus = n_aus

    @torch.no_grad()
    def forward(self, crops: torch.Tensor, aus: torch.Tensor | None) -> torch.Tensor:
        hidden, probs = self.face.penultimate_and_probs(crops)
        std = hidden.std(dim=0, unbiased=False)
        if aus is None or aus.numel() == 0:
            au_mean = au_max = hidden.new_zeros(self.n_aus)
        else:
            a = torch.nan_to_num(aus.to(hidden.device).float(), nan=0.0).clamp(0, AU_SCALE) / AU_SCALE
            au_mean, au_max = a.mean(dim=0), a.max(dim=0).values
        return torch.cat([hidden.mean(0), std, probs.mean(0), probs.max(0).values, au_mean, au_max])


class WhisperAudioEncoder(nn.Module):
    """One 16 kHz waveform ``[L]`` → the voice head's Whisper-base layer means, concatenated."""

    def __init__(self, layers: tuple[int, ...]) -> None:
        super().__init__()
        from emollama.heads.whisper_encoder import WhisperLayerEmbedder

        # Not registered as a submodule: the embedder runs its mel front end and the 20 M-parameter
        # encoder on the CPU (as the voice head does), so `.to("cuda")` must not move it.
        self.embedder = WhisperLayerEmbedder(layers)
        self.embedder.encoder.eval()
        self.dim = self.embedder.dim

    @torch.no_grad()
    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """→ ``[dim]`` float32 on the CPU (the caller moves it)."""
        return torch.from_numpy(self.embedder(wave.float().cpu().numpy())).float()


class TemporalEncoder(nn.Module):
    """A stack of face crops ``[B, T, 3, s, s]`` → ``[B, D]`` (mean of all tube tokens)."""

    def __init__(self, model: VideoMAEModel) -> None:
        super().__init__()
        self.model = model

    @torch.no_grad()
    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=clips).last_hidden_state.mean(dim=1)

    @classmethod
    def from_config(cls, cfg: TemporalEncoderConfig, model_cfg: EmotionLlamaConfig) -> TemporalEncoder:
        model = _hf_model(
            VideoMAEModel,
            model_cfg.resolve(cfg.path),
            cfg.random_init,
            "Temporal (VideoMAE) encoder",
            "temporal_encoder.path",
            torch_dtype(cfg.dtype),
        )
        return _freeze(cls(model))


class AudioEncoder(nn.Module):
    """One 16 kHz waveform ``[L]`` → ``[D]`` (last hidden layer, mean over time)."""

    def __init__(self, model: HubertModel) -> None:
        super().__init__()
        self.model = model

    @torch.no_grad()
    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.model(input_values=wave[None]).last_hidden_state[0].mean(dim=0)

    @classmethod
    def from_config(cls, cfg: AudioEncoderConfig, model_cfg: EmotionLlamaConfig) -> AudioEncoder:
        model = _hf_model(
            HubertModel,
            model_cfg.resolve(cfg.path),
            cfg.random_init,
            "Audio (HuBERT) encoder",
            "audio_encoder.path",
            torch_dtype(cfg.dtype),
        )
        return _freeze(cls(model))


class MediaEncoders(nn.Module):
    """The configured encoders together; any of them may be absent (features then come from a cache)."""

    def __init__(
        self,
        cfg: EmotionLlamaConfig,
        global_encoder: GlobalEncoder | None,
        local: LocalEncoder | None,
        temporal: TemporalEncoder | None,
        audio: AudioEncoder | None,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.global_encoder = global_encoder
        self.local = local
        self.temporal = temporal
        self.audio = audio

    @classmethod
    def from_config(cls, cfg: EmotionLlamaConfig) -> MediaEncoders:
        le, te, ae = cfg.local_encoder, cfg.temporal_encoder, cfg.audio_encoder
        face = FaceHeadLocalEncoder.load() if any(
            (le and le.kind == "face_cnn", te and te.kind == "face_track")) else None
        local: nn.Module | None = None
        if le is not None:
            local = face if le.kind == "face_cnn" else LocalEncoder.from_config(le, cfg)
        temporal: nn.Module | None = None
        if te is not None:
            from emollama.perception.action_units import AU_NAMES

            temporal = FaceTrackTemporalEncoder(face, len(AU_NAMES)) if te.kind == "face_track" \
                else TemporalEncoder.from_config(te, cfg)
        audio: nn.Module | None = None
        if ae is not None:
            audio = _freeze(WhisperAudioEncoder(tuple(ae.whisper_layers))) if ae.kind == "whisper_base" \
                else AudioEncoder.from_config(ae, cfg)
        pj = cfg.projector
        widths = [("local_encoder", local, face.dim if face is not None else None, pj.local_dim, "local_dim")]
        if isinstance(temporal, FaceTrackTemporalEncoder):
            n_classes = len(face.network.head[-1].weight) if face is not None else 0
            widths.append(("temporal_encoder", temporal, face_track_dim(face.dim, n_classes, temporal.n_aus),
                           pj.temporal_dim, "temporal_dim"))
        if isinstance(audio, WhisperAudioEncoder):
            widths.append(("audio_encoder", audio, audio.dim, pj.audio_dim, "audio_dim"))
        for slot, enc, width, want, key in widths:
            if enc is not None and (enc is face or slot != "local_encoder") and width is not None and width != want:
                raise ConfigError(f"{slot} gives {width} values per clip but projector.{key} is {want}; "
                                  f"set projector.{key}: {width}")
        return cls(
            cfg,
            GlobalEncoder.from_config(cfg.global_encoder, cfg) if cfg.global_encoder else None,
            local,  # type: ignore[arg-type]
            temporal,  # type: ignore[arg-type]
            audio,  # type: ignore[arg-type]
        )

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    @torch.no_grad()
    def encode(self, batch: MediaBatch) -> MediaFeatures:
        """Run every encoder on what the sample has; absent media or encoders give zeros."""
        pj = self.cfg.projector
        n = len(batch.global_pixels)
        dev = self.device
        feats = MediaFeatures.zeros(pj, n, device=dev)
        for i in range(n):
            if self.global_encoder is not None and batch.global_pixels[i] is not None:
                px = batch.global_pixels[i][None].to(dev, self.global_encoder.ln_vision.weight.dtype)
                patches, cls = self.global_encoder(px)
                feats.global_patches[i], feats.global_cls[i] = patches[0].float(), cls[0].float()
            if self.local is not None and batch.local_pixels[i] is not None:
                lp = batch.local_pixels[i].to(dev, next(self.local.parameters()).dtype)
                feats.local[i] = self.local(lp).float()
            if isinstance(self.temporal, FaceTrackTemporalEncoder) and batch.temporal_pixels[i] is not None:
                feats.temporal[i] = self.temporal(batch.temporal_pixels[i].to(dev), batch.temporal_aus[i]).float()
            elif self.temporal is not None and batch.temporal_pixels[i] is not None:
                tp = batch.temporal_pixels[i][None].to(dev, next(self.temporal.parameters()).dtype)
                feats.temporal[i] = self.temporal(tp)[0].float()
            if isinstance(self.audio, WhisperAudioEncoder) and batch.audio[i] is not None:
                feats.audio[i] = self.audio(batch.audio[i]).to(dev)
            elif self.audio is not None and batch.audio[i] is not None:
                au = batch.audio[i].to(dev, next(self.audio.parameters()).dtype)
                feats.audio[i] = self.audio(au).float()
        return feats

    def save_pretrained(self, folder: Path) -> dict[str, str]:
        """Write every encoder in its standard format under ``folder``; returns config path updates.

        Used to make a self-contained model folder from random-weight configs (tests, demos).
        """
        updates: dict[str, str] = {}
        if self.global_encoder is not None:
            if self.global_encoder.kind == "eva_vit_g":
                torch.save(self.global_encoder.tower.state_dict(), folder / "eva_vit_g.pth")
                updates["global_encoder.path"] = "eva_vit_g.pth"
            else:
                self.global_encoder.tower.save_pretrained(folder / "global_encoder")
                updates["global_encoder.path"] = "global_encoder"
        for name, enc in (
            ("local_encoder", self.local),
            ("temporal_encoder", self.temporal),
            ("audio_encoder", self.audio),
        ):
            if enc is not None and hasattr(enc, "model"):  # the shipped heads travel with the package
                enc.model.save_pretrained(folder / name)
                updates[f"{name}.path"] = name
        return updates


@dataclass
class MediaBatch:
    """Preprocessed media for a batch, one entry per sample; ``None`` marks a missing modality."""

    global_pixels: list[torch.Tensor | None]  # [3, S, S] each
    local_pixels: list[torch.Tensor | None]  # [F, 3, s, s] each
    temporal_pixels: list[torch.Tensor | None]  # [T, 3, s, s] each
    audio: list[torch.Tensor | None]  # [L] each
    #: ``face_track`` only: AU intensities ``[T, A]`` over the face track (NaN where not measured).
    temporal_aus: list[torch.Tensor | None] | None = None

    def __post_init__(self) -> None:
        if (
            not len(self.global_pixels)
            == len(self.local_pixels)
            == len(self.temporal_pixels)
            == len(self.audio)
        ):
            raise ValueError("MediaBatch fields must all have one entry per sample.")
        if self.temporal_aus is None:
            self.temporal_aus = [None] * len(self.audio)

    def __len__(self) -> int:
        return len(self.global_pixels)
