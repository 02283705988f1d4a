"""The Emotion-LLaMA model: projected media tokens spliced into a (LoRA-tuned) causal LM.

Read top to bottom:

1. :class:`MediaFeatures` — what the encoders produce for a batch (or what a feature cache holds).
2. :class:`Projector` — one linear map per modality into the LLM width, with the official shapes
   (EVA patches merged 4-by-4: 5632 → H; EVA CLS 1408 → H; MAE, VideoMAE, HuBERT 1024 → H), so an
   official checkpoint maps onto it one to one.
3. :class:`EmotionLlama` — builds ``inputs_embeds`` by writing the projected tokens where the
   token sequence holds the sentinels :data:`VIDEO_TOKEN_ID` / :data:`FEATURE_TOKEN_ID`, runs the
   LM, computes the loss on answer tokens only, and generates (greedy or sampled, batched with left
   padding, step by step for streaming).

The model is tensors in, tensors out. Turning media and text into those tensors is the job of
:class:`emollama.model.processor.EmotionLlamaProcessor`, which writes the *same* token layout for
training and generation (the original code does not).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, DynamicCache, PreTrainedModel

from emollama.errors import ModelUnavailableError
from emollama.model.config import EmotionLlamaConfig, ProjectorConfig
from emollama.model.weights import canonical_key, load_trainable, read_config, read_weights, save_pretrained

#: Sentinel ids in ``input_ids`` marking where projected tokens go (never looked up in the vocab).
VIDEO_TOKEN_ID = -200
FEATURE_TOKEN_ID = -201
#: Label value excluded from the loss (PyTorch's cross-entropy default).
IGNORE_INDEX = -100
#: Feature tokens at ``<FeatureHere>``, in the order the released weights use.
FEATURE_ORDER: tuple[str, ...] = ("local", "temporal", "audio", "global_cls")

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


#: Seed of every random-weight backbone built from a config's ``random_init``.
RANDOM_INIT_SEED = 0


@contextmanager
def seeded_random_init(seed: int = RANDOM_INIT_SEED) -> Iterator[None]:
    """Build random-weight backbones from a fixed seed without touching the caller's RNG.

    Why: a ``random_init`` config must name *one* model. Features extracted with random encoders,
    and a trained run folder whose frozen LM is random, are only meaningful if rebuilding the same
    config gives the same frozen weights; the caller's own RNG stream (LoRA init, data order) is
    left exactly as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def torch_dtype(name: str) -> torch.dtype:
    try:
        return _DTYPES[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; use one of {', '.join(_DTYPES)}") from None


# --------------------------------------------------------------------------------------------- 1
@dataclass
class MediaFeatures:
    """Encoder outputs for a batch of ``B`` clips (float32)."""

    global_patches: torch.Tensor  # [B, N, Dg]   post-ln_vision patch tokens of the global frame
    global_cls: torch.Tensor  # [B, Dg]
    local: torch.Tensor  # [B, Dl]       mean over face crops
    temporal: torch.Tensor  # [B, Dt]
    audio: torch.Tensor  # [B, Da]

    def present(self) -> torch.Tensor:
        """``[B, 4]`` bool in :data:`FEATURE_ORDER`: which modalities this clip really has.

        An absent modality is stored as an all-zero vector (the encoders' convention, which the
        official feature files share), so presence is read off the values: a real encoder output
        is never exactly zero everywhere. No extra tensor is needed in feature stores.
        """
        return torch.stack([getattr(self, name).ne(0).any(dim=-1) for name in FEATURE_ORDER], dim=1)

    @classmethod
    def zeros(cls, pj: ProjectorConfig, batch: int, device: torch.device | str = "cpu") -> MediaFeatures:
        def z(*shape: int) -> torch.Tensor:
            return torch.zeros(*shape, device=device)

        return cls(
            z(batch, pj.global_patches, pj.global_dim),
            z(batch, pj.global_dim),
            z(batch, pj.local_dim),
            z(batch, pj.temporal_dim),
            z(batch, pj.audio_dim),
        )

    def to(self, device: torch.device | str) -> MediaFeatures:
        return MediaFeatures(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    @classmethod
    def cat(cls, items: Sequence[MediaFeatures]) -> MediaFeatures:
        return cls(**{f.name: torch.cat([getattr(x, f.name) for x in items]) for f in fields(cls)})

    def __len__(self) -> int:
        return self.global_cls.shape[0]


# --------------------------------------------------------------------------------------------- 2
class Projector(nn.Module):
    """Per-modality linear maps into the LLM width (no MLP, no Q-Former: as in the paper)."""

    def __init__(self, pj: ProjectorConfig, hidden: int) -> None:
        super().__init__()
        self.merge = pj.merge
        self.global_patches = nn.Linear(pj.global_dim * pj.merge, hidden)  # official: llama_proj
        self.global_cls = nn.Linear(pj.global_dim, hidden)  # official: cls_tk_llama_proj
        self.local = nn.Linear(pj.local_dim, hidden)  # official: feats_llama_proj1
        self.temporal = nn.Linear(pj.temporal_dim, hidden)  # official: feats_llama_proj2
        self.audio = nn.Linear(pj.audio_dim, hidden)  # official: feats_llama_proj3
        # One learned vector per feature slot for an absent modality (not in the released weights).
        self.absent = nn.Parameter(torch.zeros(len(FEATURE_ORDER), hidden)) if pj.absent_embeddings else None

    def forward(self, feats: MediaFeatures) -> tuple[torch.Tensor, torch.Tensor]:
        """→ (video tokens ``[B, N/merge, H]``, feature tokens ``[B, 4, H]`` in :data:`FEATURE_ORDER`)."""
        dtype = self.global_patches.weight.dtype
        b, n, d = feats.global_patches.shape
        # Concatenate each run of `merge` consecutive patches (raster order) into one vector.
        merged = feats.global_patches.to(dtype).reshape(b, n // self.merge, d * self.merge)
        video = self.global_patches(merged)
        feature = torch.stack(
            [
                self.local(feats.local.to(dtype)),
                self.temporal(feats.temporal.to(dtype)),
                self.audio(feats.audio.to(dtype)),
                self.global_cls(feats.global_cls.to(dtype)),
            ],
            dim=1,
        )
        if self.absent is not None:
            present = feats.present().to(feature.device)[..., None]
            feature = torch.where(present, feature, self.absent.to(feature.dtype).expand_as(feature))
        return video, feature


# --------------------------------------------------------------------------------------------- 3
def build_llm(cfg: EmotionLlamaConfig, device: str | torch.device = "cpu") -> PreTrainedModel:
    """The frozen causal LM: from a local HF folder, or random weights from ``llm.random_init``."""
    lc = cfg.llm
    dtype = torch_dtype(lc.dtype)
    path = cfg.llm_folder()
    if path is None:
        kwargs = dict(lc.random_init or {})
        config = AutoConfig.for_model(kwargs.pop("model_type"), **kwargs)
        with seeded_random_init():
            model = AutoModelForCausalLM.from_config(
                config, dtype=dtype, attn_implementation=lc.attn_implementation
            )
        return model.to(device)
    if not (path / "config.json").is_file():
        raise ModelUnavailableError(
            f"LLM weights not found: expected a Hugging Face model folder with config.json at {path} "
            "(llm.path)."
        )
    extra: dict[str, Any] = {}
    if lc.quantization is not None:
        extra["quantization_config"] = _bnb_config(lc.quantization, dtype)
        extra["device_map"] = {"": device}
    model = AutoModelForCausalLM.from_pretrained(
        str(path), dtype=dtype, attn_implementation=lc.attn_implementation, **extra
    )
    return model if lc.quantization is not None else model.to(device)


def _bnb_config(mode: str, compute_dtype: torch.dtype) -> Any:
    """8/4-bit loading of the frozen backbone; bitsandbytes is an optional, GPU-only extra."""
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except ImportError as exc:
        raise ModelUnavailableError(
            f"llm.quantization={mode} needs bitsandbytes and a CUDA GPU: `pip install bitsandbytes`."
        ) from exc
    if mode == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=compute_dtype,
        bnb_4bit_use_double_quant=True,
    )


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted over real tokens only, so left/right padding never shifts a sample."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


class EmotionLlama(nn.Module):
    """Projector + causal LM (+ LoRA). Only the projector and LoRA weights are trainable."""

    def __init__(self, cfg: EmotionLlamaConfig, llm: PreTrainedModel) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.lora.enabled:
            import peft

            lora = peft.LoraConfig(
                r=cfg.lora.r,
                lora_alpha=cfg.lora.alpha,
                lora_dropout=cfg.lora.dropout,
                target_modules=list(cfg.lora.target_modules),
                bias="none",
            )
            llm = peft.inject_adapter_in_model(lora, llm)
        for name, p in llm.named_parameters():
            p.requires_grad_(cfg.lora.enabled and "lora_" in name)
        self.llm = llm
        self.projector = Projector(cfg.projector, llm.config.get_text_config().hidden_size)
        self.projector.to(self._embed_device())

    @classmethod
    def from_config(cls, cfg: EmotionLlamaConfig, device: str | torch.device = "cpu") -> EmotionLlama:
        """Build the LM (weights from ``llm.path`` or random) with fresh LoRA and projector."""
        return cls(cfg, build_llm(cfg, device))

    @classmethod
    def from_pretrained(
        cls, folder: str | Path, device: str | torch.device = "cpu", dtype: str | None = None
    ) -> EmotionLlama:
        """Load a folder written by :meth:`save_pretrained` (strict: see ``weights.py``)."""
        folder = Path(folder)
        model = cls.from_config(read_config(folder, dtype), device=device)
        load_trainable(model, read_weights(folder))
        return model

    def save_pretrained(
        self,
        folder: str | Path,
        *,
        save_backbones: bool = False,
        processor: Any | None = None,
        encoders: Any | None = None,
    ) -> Path:
        """Write this model as a folder that :meth:`from_pretrained` loads (see ``weights.py``)."""
        return save_pretrained(
            self, folder, save_backbones=save_backbones, processor=processor, encoders=encoders
        )

    # ------------------------------------------------------------------------------ embeddings
    def _embed_device(self) -> torch.device:
        return self.llm.get_input_embeddings().weight.device

    @property
    def device(self) -> torch.device:
        return self._embed_device()

    def embed(self, input_ids: torch.Tensor, feats: MediaFeatures) -> torch.Tensor:
        """Token embeddings with the projected media written at the sentinel positions."""
        embedding = self.llm.get_input_embeddings()
        text = embedding(input_ids.clamp(min=0))
        video, feature = self.projector(feats.to(text.device))
        video_mask = input_ids == VIDEO_TOKEN_ID
        feature_mask = input_ids == FEATURE_TOKEN_ID
        n_video, n_feature = video_mask.sum(1), feature_mask.sum(1)
        if not (bool((n_video == video.shape[1]).all()) and bool((n_feature == feature.shape[1]).all())):
            raise ValueError(
                f"each sequence needs {video.shape[1]} video and {feature.shape[1]} feature slots; "
                f"got {n_video.tolist()} and {n_feature.tolist()}"
            )
        # Row-major fill: every row has exactly the right number of slots, so sample i gets its own tokens.
        embeds = text.masked_scatter(video_mask[..., None], video.to(text.dtype))
        return embeds.masked_scatter(feature_mask[..., None], feature.to(text.dtype))

    # ------------------------------------------------------------------------------ training
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        feats: MediaFeatures,
        labels: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """→ (logits ``[B, T, V]``, mean next-token loss over answer tokens or ``None``)."""
        embeds = self.embed(input_ids, feats)
        out = self.llm(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            position_ids=position_ids_from_mask(attention_mask),
            use_cache=False,
        )
        logits = out.logits
        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=IGNORE_INDEX
            )
        return logits, loss

    # ------------------------------------------------------------------------------ generation
    @torch.no_grad()
    def iter_generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        feats: MediaFeatures,
        *,
        stop_ids: Sequence[int],
        max_new_tokens: int = 256,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        generator: torch.Generator | None = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(next_tokens [B], done [B])`` per step for a left-padded batch.

        ``done[i]`` is true once row ``i`` has produced a stop token (that token included); rows that
        are done keep being yielded with the stop token repeated so the batch stays rectangular.
        """
        if bool((attention_mask[:, -1] == 0).any()):
            raise ValueError("generation needs left padding (every row must end with a real token)")
        embedding = self.llm.get_input_embeddings()
        mask = attention_mask.to(self.device)
        embeds = self.embed(input_ids.to(self.device), feats)
        positions = position_ids_from_mask(mask)
        cache = DynamicCache(config=self.llm.config)
        out = self.llm(
            inputs_embeds=embeds,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        next_pos = positions[:, -1:] + 1
        stops = torch.tensor(list(stop_ids), device=self.device, dtype=torch.long)
        done = torch.zeros(mask.shape[0], dtype=torch.bool, device=self.device)
        filler = stops[0] if len(stops) else torch.tensor(0, device=self.device)
        for _ in range(max_new_tokens):
            logits = out.logits[:, -1].float()
            token = _pick(logits, do_sample, temperature, top_p, top_k, generator)
            token = torch.where(done, filler, token)
            done = done | torch.isin(token, stops)
            yield token, done
            if bool(done.all()):
                return
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
            out = self.llm(
                inputs_embeds=embedding(token[:, None]),
                attention_mask=mask,
                position_ids=next_pos,
                past_key_values=out.past_key_values,
                use_cache=True,
            )
            next_pos = next_pos + 1

    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        feats: MediaFeatures,
        *,
        stop_ids: Sequence[int],
        **kwargs: Any,
    ) -> list[list[int]]:
        """Generated ids per row, stop token excluded."""
        rows: list[list[int]] = [[] for _ in range(input_ids.shape[0])]
        finished = [False] * len(rows)
        for token, done in self.iter_generate(input_ids, attention_mask, feats, stop_ids=stop_ids, **kwargs):
            for i, (t, d) in enumerate(zip(token.tolist(), done.tolist(), strict=True)):
                if not finished[i] and not d:
                    rows[i].append(t)
                finished[i] = d
        return rows

    # ------------------------------------------------------------------------------ parameters
    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Projector + LoRA weights under stable names (peft's adapter segment ``.default`` removed)."""
        return {canonical_key(n): p.detach() for n, p in self.named_parameters() if p.requires_grad}

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


def _pick(
    logits: torch.Tensor,
    do_sample: bool,
    temperature: float,
    top_p: float,
    top_k: int,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Greedy argmax, or sampling with temperature / top-k / nucleus (top-p) filtering."""
    if not do_sample or temperature <= 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        probs = sorted_logits.softmax(-1)
        drop = probs.cumsum(-1) - probs > top_p  # keep the smallest prefix reaching top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]
