"""Media + text → model tensors, kept apart from the model (which is tensors in, tensors out).

Text: :meth:`EmotionLlamaProcessor.encode` is the single place where a token sequence is written.
Training calls it with the answer, generation without; the prompt part is byte-for-byte the same
in both. Layout (``llama2`` chat template)::

    <s> [INST] <video> V×N </video> <feature> F×4 </feature> {subtitle}[{task}] {instruction} [/INST]
        {answer} </s>

with exactly one BOS (as an id, never as text), the sentinels ``V``/``F`` standing for projected
tokens, and labels set only on ``{answer} </s>``. With ``chat_template: hf`` the user turn goes
through the tokenizer's own template instead (Llama-3, Qwen2.5 …).

Media: frames are resized to each encoder's square input (bicubic, no crop, as the original
``Resize((S, S))``), scaled to [0, 1] and normalised with the encoder's mean/std; audio is
normalised per utterance.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from emollama.errors import ModelUnavailableError
from emollama.model.config import EmotionLlamaConfig
from emollama.model.emotion_llama import FEATURE_TOKEN_ID, IGNORE_INDEX, VIDEO_TOKEN_ID
from emollama.model.encoders import MediaBatch
from emollama.model.prompts import (
    FEATURE_PLACEHOLDER,
    VIDEO_PLACEHOLDER,
    InstructionPools,
    render_user_prompt,
)

_SPLIT = re.compile(f"({re.escape(VIDEO_PLACEHOLDER)}|{re.escape(FEATURE_PLACEHOLDER)})")
LLAMA2_TEMPLATE = "[INST] {} [/INST]"
NUM_FEATURE_TOKENS = 4


@dataclass
class EncodedText:
    """One sample's ids (with media sentinels) and labels (``IGNORE_INDEX`` outside the answer)."""

    input_ids: list[int]
    labels: list[int]
    prompt_length: int


@dataclass
class MediaSample:
    """One clip's preprocessed media; ``None`` = modality absent."""

    global_pixels: torch.Tensor | None
    local_pixels: torch.Tensor | None
    temporal_pixels: torch.Tensor | None
    audio: torch.Tensor | None
    temporal_aus: torch.Tensor | None = None  # [T, A] AU intensities over the face track (``face_track``)


class EmotionLlamaProcessor:
    """Tokenizer + instruction pools + media preprocessing for one model config."""

    def __init__(
        self,
        cfg: EmotionLlamaConfig,
        tokenizer: PreTrainedTokenizerBase,
        pools: InstructionPools | None = None,
    ) -> None:
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.pools = pools or InstructionPools.load(cfg.resolve(cfg.prompt.instructions))
        self.num_video_tokens = cfg.projector.num_video_tokens
        self.pad_id = next(
            i
            for i in (tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.eos_token_id, 0)
            if i is not None
        )
        stop = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        for tok in cfg.llm.extra_stop_tokens:
            tid = tokenizer.convert_tokens_to_ids(tok)
            if tid is None or tid == tokenizer.unk_token_id:
                raise ModelUnavailableError(
                    f"llm.extra_stop_tokens: {tok!r} is not a token of this tokenizer."
                )
            stop.append(tid)
        if not stop:
            raise ModelUnavailableError("The tokenizer has no EOS token; set llm.extra_stop_tokens.")
        self.stop_ids: list[int] = stop

    @classmethod
    def from_config(cls, cfg: EmotionLlamaConfig) -> EmotionLlamaProcessor:
        path = cfg.resolve(cfg.llm.tokenizer_path) or cfg.llm_folder()
        if path is None:
            vocab = int((cfg.llm.random_init or {}).get("vocab_size", 32000))
            tokenizer: PreTrainedTokenizerBase = train_byte_bpe_tokenizer(
                InstructionPools.load(cfg.resolve(cfg.prompt.instructions)), vocab
            )
        else:
            if not path.is_dir():
                raise ModelUnavailableError(
                    f"Tokenizer not found: expected a Hugging Face tokenizer folder at {path}."
                )
            tokenizer = AutoTokenizer.from_pretrained(str(path))
        return cls(cfg, tokenizer)

    def save_pretrained(self, folder: str | Path) -> None:
        self.tokenizer.save_pretrained(str(folder))

    # ------------------------------------------------------------------------------ text
    def user_prompt(
        self, task: str, subtitle: str | None, instruction: str | None = None, *, label_set: str = "merr9"
    ) -> str:
        """The user turn (placeholders included); ``instruction`` defaults to the pool's first."""
        if instruction is None:
            instruction = self.pools.instruction(task, label_set=label_set)
        return render_user_prompt(self.pools, task, instruction, subtitle)

    def chat_text(self, user: str) -> tuple[str, bool]:
        """The user turn inside the backbone's chat template → (text, whether to prepend BOS id)."""
        tok = self.tokenizer
        if self.cfg.llm.chat_template == "llama2":
            return LLAMA2_TEMPLATE.format(user), tok.bos_token_id is not None
        system = self.cfg.llm.system_prompt
        turns = ([{"role": "system", "content": system}] if system is not None else []) + [
            {"role": "user", "content": user}
        ]
        text = tok.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        assert isinstance(text, str)
        # Templates that write the BOS as text (Llama-3) get it back as one id, never twice.
        if tok.bos_token and text.startswith(tok.bos_token):
            return text[len(tok.bos_token) :], True
        return text, False

    def encode(self, user: str, answer: str | None = None) -> EncodedText:
        """Token ids for one sample; the prompt part is identical with and without ``answer``."""
        text, add_bos = self.chat_text(user)
        ids: list[int] = [self.tokenizer.bos_token_id] if add_bos else []
        for piece in _SPLIT.split(text):
            if piece == VIDEO_PLACEHOLDER:
                ids += [VIDEO_TOKEN_ID] * self.num_video_tokens
            elif piece == FEATURE_PLACEHOLDER:
                ids += [FEATURE_TOKEN_ID] * NUM_FEATURE_TOKENS
            elif piece:
                ids += self.tokenizer(piece, add_special_tokens=False)["input_ids"]
        prompt_length = len(ids)
        limit = self.cfg.prompt.max_context_tokens
        if prompt_length >= limit:
            raise ValueError(f"prompt is {prompt_length} tokens, over prompt.max_context_tokens={limit}")
        labels = [IGNORE_INDEX] * prompt_length
        if answer is not None:
            answer_ids = self.tokenizer(answer, add_special_tokens=False)["input_ids"]
            answer_ids = answer_ids[: self.cfg.prompt.max_answer_tokens - 1] + [self.stop_ids[0]]
            answer_ids = answer_ids[: limit - prompt_length]
            ids += answer_ids
            labels += answer_ids
        return EncodedText(ids, labels, prompt_length)

    def collate(self, items: Sequence[EncodedText], padding_side: str = "right") -> dict[str, torch.Tensor]:
        """Pad to a batch: right padding for training, left padding for generation."""
        width = max(len(x.input_ids) for x in items)
        ids = torch.full((len(items), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(items), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for i, item in enumerate(items):
            n = len(item.input_ids)
            sl = slice(0, n) if padding_side == "right" else slice(width - n, width)
            ids[i, sl] = torch.tensor(item.input_ids)
            labels[i, sl] = torch.tensor(item.labels)
            mask[i, sl] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode([i for i in ids if i >= 0], skip_special_tokens=True).strip()

    # ------------------------------------------------------------------------------ media
    def preprocess_media(
        self,
        frames: Sequence[np.ndarray],
        face_crops: Sequence[np.ndarray],
        peak_frame_index: int | None,
        audio_16k: np.ndarray | None,
        face_aus: np.ndarray | None = None,
    ) -> MediaSample:
        """See :func:`preprocess_media` (the tokenizer plays no part in it)."""
        return preprocess_media(self.cfg, frames, face_crops, peak_frame_index, audio_16k, face_aus)

    @staticmethod
    def collate_media(samples: Sequence[MediaSample]) -> MediaBatch:
        return collate_media(samples)


def preprocess_media(
    cfg: EmotionLlamaConfig,
    frames: Sequence[np.ndarray],
    face_crops: Sequence[np.ndarray],
    peak_frame_index: int | None,
    audio_16k: np.ndarray | None,
    face_aus: np.ndarray | None = None,
) -> MediaSample:
    """Pick and normalise what each configured encoder needs from one clip.

    A function of the model config alone (no tokenizer), so feature extraction runs exactly the
    preprocessing of generation without building the LLM's tokenizer. The face-head kinds
    (``face_cnn``, ``face_track``) get the head's own input (48×48 grey in [-1, 1]).
    """
    global_px = local_px = temporal_px = audio = aus = None
    ge = cfg.global_encoder
    if ge is not None and len(frames):
        index = choose_global_frame(len(frames), ge.frame, peak_frame_index)
        global_px = image_tensor(frames[index], ge.image_size, ge.mean, ge.std)
    le = cfg.local_encoder
    if le is not None and len(face_crops):
        picks = uniform_indices(len(face_crops), min(le.max_frames, len(face_crops)))
        local_px = face_head_tensor([face_crops[i] for i in picks]) if le.kind == "face_cnn" else \
            torch.stack([image_tensor(face_crops[i], le.image_size, le.mean, le.std) for i in picks])
    te = cfg.temporal_encoder
    if te is not None and len(face_crops):
        if te.kind == "face_track":
            picks = uniform_indices(len(face_crops), min(te.num_frames, len(face_crops)))
            temporal_px = face_head_tensor([face_crops[i] for i in picks])
            if face_aus is not None and len(face_aus):
                aus = torch.as_tensor(np.asarray(face_aus, dtype=np.float32))
        else:
            picks = uniform_indices(len(face_crops), te.num_frames)
            temporal_px = torch.stack([image_tensor(face_crops[i], te.image_size, te.mean, te.std) for i in picks])
    ae = cfg.audio_encoder
    if ae is not None and audio_16k is not None and len(audio_16k) >= ae.sample_rate // 10:
        wave = torch.as_tensor(np.asarray(audio_16k, dtype=np.float32)[: int(ae.max_seconds * ae.sample_rate)])
        if ae.normalize:
            wave = (wave - wave.mean()) / torch.sqrt(wave.var() + 1e-7)
        audio = wave
    return MediaSample(global_px, local_px, temporal_px, audio, aus)


def face_head_tensor(crops: Sequence[np.ndarray]) -> torch.Tensor:
    """Face crops → the shipped face head's input ``[F, 1, 48, 48]`` (its own preprocessing)."""
    from emollama.heads.face import preprocess_faces

    return preprocess_faces(list(crops))


def collate_media(samples: Sequence[MediaSample]) -> MediaBatch:
    """Preprocessed clips → one :class:`MediaBatch` for :meth:`MediaEncoders.encode`."""
    return MediaBatch(
        [s.global_pixels for s in samples],
        [s.local_pixels for s in samples],
        [s.temporal_pixels for s in samples],
        [s.audio for s in samples],
        [s.temporal_aus for s in samples],
    )


def choose_global_frame(n: int, rule: str, peak: int | None) -> int:
    """Index of the frame fed to the global encoder (``peak`` falls back to the middle)."""
    if rule == "first":
        return 0
    if rule == "peak" and peak is not None and 0 <= peak < n:
        return peak
    return n // 2


def uniform_indices(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``n`` items (repeats when ``n < k``)."""
    return [min(n - 1, int((i + 0.5) * n / k)) for i in range(k)]


def image_tensor(image: np.ndarray, size: int, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """RGB uint8 ``H×W×3`` → normalised ``[3, size, size]`` float32 (bicubic resize, no crop)."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an RGB image H×W×3, got shape {arr.shape}")
    x = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float()[None] / 255.0
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    x = x.clamp(0.0, 1.0)[0]
    m = torch.tensor(mean).view(3, 1, 1)
    s = torch.tensor(std).view(3, 1, 1)
    return (x - m) / s


def train_byte_bpe_tokenizer(pools: InstructionPools, vocab_size: int) -> PreTrainedTokenizerFast:
    """A small byte-level BPE for random-weight backbones (tests, benchmarks): encodes any text.

    Trained in-process on the instruction pools, the label words and the chat scaffold so common
    prompt words are single tokens; byte fallback covers everything else.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from emollama.labels import CANONICAL

    corpus = [pools.scaffold, pools.subtitle, LLAMA2_TEMPLATE, " ".join(CANONICAL)]
    corpus += [text for pool in pools.pools.values() for text in pool]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    size = max(min(vocab_size, 1024), 256 + len(specials))
    trainer = trainers.BpeTrainer(
        vocab_size=size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus * 4, trainer=trainer)
    if tok.get_vocab_size() > vocab_size:
        raise ValueError(f"random LLM vocab_size {vocab_size} is smaller than the byte-level tokenizer needs")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
