"""The Whisper-base audio encoder in plain PyTorch, read from the CTranslate2 weights the ASR uses.

Why: CTranslate2 only returns the encoder's *last* layer, but the emotion information in Whisper
sits in its middle layers (on the EmoDB dev speakers, leave-one-speaker-out, a linear read-out of
layer 3 beats the last layer by about 0.17 UAR; see ``emollama/assets/heads/voice/MODEL_CARD.md``).
The same ``model.bin`` that faster-whisper loads (assembled from the two registry packages, see
:func:`emollama.packaged.whisper_base_dir`) holds the encoder weights as named float16 arrays, so
this module parses that file and rebuilds the encoder as ~40 lines of ``torch`` — nothing is
downloaded and no second copy of the weights is shipped.

Unlike faster-whisper, the encoder here runs on the clip's real length (no padding to 30 s): it
is 30× cheaper for a 1-s clip, and the voice head was trained on exactly these features.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emollama.errors import ModelUnavailableError

#: CTranslate2 ``DataType`` codes → numpy dtypes (see its ``types.h``).
_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
SAMPLE_RATE = 16_000
#: Encoder frames per second of audio (10 ms mel hop, stride-2 second convolution).
FRAMES_PER_SECOND = 50


def read_ct2_variables(path: Path, prefix: str = "encoder/") -> dict[str, np.ndarray]:
    """Named arrays whose names start with ``prefix`` from a CTranslate2 ``model.bin`` (as float32).

    The file is a header (format version, spec name, revision, count) and then, per variable,
    its name, rank, dimensions, dtype code, byte count and raw bytes. Only float16/float32 weights
    (and integer scalars such as ``num_heads``) are read; anything else, e.g. an int8 model with
    scales, is refused with a clear error rather than read as wrong numbers.
    """
    out: dict[str, np.ndarray] = {}
    try:
        with open(path, "rb") as fh:
            def read(fmt: str) -> tuple:
                size = struct.calcsize(fmt)
                data = fh.read(size)
                if len(data) != size:
                    raise EOFError
                return struct.unpack(fmt, data)

            def read_string() -> str:
                (n,) = read("<H")
                return fh.read(n).decode("utf-8").rstrip("\0")

            read("<I")  # binary format version
            spec = read_string()
            read("<I")  # spec revision
            (count,) = read("<I")
            for _ in range(count):
                name = read_string()
                (rank,) = read("<B")
                dims = read("<" + "I" * rank) if rank else ()
                (code,) = read("<B")
                (nbytes,) = read("<I")
                if not name.startswith(prefix):
                    fh.seek(nbytes, 1)
                    continue
                if code not in _CT2_DTYPES or (rank > 0 and code not in (0, 4)) or name.endswith("_scale"):
                    raise ModelUnavailableError(
                        f"{path}: variable {name} is quantised or of dtype {code}; this reader takes float16/float32 "
                        "weights only (convert the model without quantisation)")
                raw = fh.read(nbytes)
                if len(raw) != nbytes:
                    raise EOFError
                arr = np.frombuffer(raw, dtype=_CT2_DTYPES[code]).reshape(dims)
                out[name[len(prefix):]] = arr.astype(np.float32)
    except (EOFError, UnicodeDecodeError, ValueError) as exc:
        raise ModelUnavailableError(f"{path} is not a complete CTranslate2 model file ({exc!r})") from exc
    if not out:
        raise ModelUnavailableError(f"{path} ({spec}) has no variables under {prefix!r}")
    return out


@dataclass(frozen=True)
class WhisperEncoderConfig:
    n_mels: int = 80
    width: int = 512
    layers: int = 6
    heads: int = 8
    max_positions: int = 1500


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x)); fused q/k/v projection."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.attn_norm = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.mlp_norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, 4 * width)
        self.fc2 = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.attn_norm(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        x = x + self.out(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.mlp_norm(x))))


class WhisperEncoder(nn.Module):
    """Log-mel (B, n_mels, T) → hidden states of every layer, each (B, T/2, width).

    ``forward`` returns ``layers + 1`` tensors: the convolution stem plus positions, then each
    block's output; the last one has the final layer norm applied (what Whisper's decoder sees).
    """

    def __init__(self, config: WhisperEncoderConfig = WhisperEncoderConfig()) -> None:
        super().__init__()
        self.config = config
        self.conv1 = nn.Conv1d(config.n_mels, config.width, 3, padding=1)
        self.conv2 = nn.Conv1d(config.width, config.width, 3, stride=2, padding=1)
        self.register_buffer("positions", torch.zeros(config.max_positions, config.width), persistent=True)
        self.blocks = nn.ModuleList(EncoderBlock(config.width, config.heads) for _ in range(config.layers))
        self.final_norm = nn.LayerNorm(config.width)

    def forward(self, mel: torch.Tensor) -> list[torch.Tensor]:
        x = F.gelu(self.conv2(F.gelu(self.conv1(mel)))).transpose(1, 2)
        if x.shape[1] > self.config.max_positions:
            raise ValueError(f"at most {self.config.max_positions * 2} mel frames (30 s) per call, got {mel.shape[-1]}")
        x = x + self.positions[: x.shape[1]]
        states = [x]
        for block in self.blocks:
            x = block(x)
            states.append(x)
        states[-1] = self.final_norm(x)
        return states

    @classmethod
    def from_ct2(cls, path: Path) -> WhisperEncoder:
        """Build from a CTranslate2 Whisper ``model.bin`` (the shape of the model is read from the file)."""
        w = read_ct2_variables(path, "encoder/")
        try:
            layers = len({m.group(1) for k in w if (m := re.match(r"layer_(\d+)/", k))})
            config = WhisperEncoderConfig(n_mels=w["conv1/weight"].shape[1], width=w["conv1/weight"].shape[0],
                                          layers=layers, heads=int(w["num_heads"]),
                                          max_positions=w["position_encodings/encodings"].shape[0])
            names = {"conv1.weight": "conv1/weight", "conv1.bias": "conv1/bias", "conv2.weight": "conv2/weight",
                     "conv2.bias": "conv2/bias", "positions": "position_encodings/encodings",
                     "final_norm.weight": "layer_norm/gamma", "final_norm.bias": "layer_norm/beta"}
            parts = {"attn_norm": "self_attention/layer_norm", "qkv": "self_attention/linear_0",
                     "out": "self_attention/linear_1", "mlp_norm": "ffn/layer_norm", "fc1": "ffn/linear_0",
                     "fc2": "ffn/linear_1"}
            for i in range(layers):
                for ours, theirs in parts.items():
                    is_norm = ours.endswith("norm")
                    names[f"blocks.{i}.{ours}.weight"] = f"layer_{i}/{theirs}/{'gamma' if is_norm else 'weight'}"
                    names[f"blocks.{i}.{ours}.bias"] = f"layer_{i}/{theirs}/{'beta' if is_norm else 'bias'}"
            model = cls(config)
            model.load_state_dict({ours: torch.from_numpy(w[theirs].copy()) for ours, theirs in names.items()},
                                  strict=True)
        except (KeyError, RuntimeError) as exc:
            raise ModelUnavailableError(f"{path} does not hold a Whisper encoder this code can read ({exc})") from exc
        return model.eval()


class WhisperLayerEmbedder:
    """16 kHz audio → mean of chosen encoder layers' hidden states over the clip, concatenated.

    Audio longer than 30 s is cut into 30-s windows whose means are averaged, weighted by length.
    """

    def __init__(self, layers: tuple[int, ...], encoder: WhisperEncoder | None = None) -> None:
        from faster_whisper.feature_extractor import FeatureExtractor

        if encoder is None:
            from emollama.packaged import whisper_base_dir

            encoder = WhisperEncoder.from_ct2(whisper_base_dir() / "model.bin")
        self.encoder = encoder
        self.layers = tuple(layers)
        if not all(0 <= i <= encoder.config.layers for i in self.layers):
            raise ValueError(f"layers must be in 0..{encoder.config.layers}, got {self.layers}")
        self._mel = FeatureExtractor(feature_size=encoder.config.n_mels)

    @property
    def dim(self) -> int:
        return len(self.layers) * self.encoder.config.width

    @torch.inference_mode()
    def __call__(self, audio: np.ndarray) -> np.ndarray:
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        if audio.size < SAMPLE_RATE // 50:
            raise ValueError("audio shorter than 20 ms has no Whisper frame")
        mel = self._mel(audio)
        n = mel.shape[1] - mel.shape[1] % 2
        window = 2 * self.encoder.config.max_positions
        total = np.zeros(self.dim)
        weight = 0
        for start in range(0, n, window):
            chunk = mel[:, start:min(start + window, n)]
            if chunk.shape[1] < 2:
                break
            states = self.encoder(torch.from_numpy(np.ascontiguousarray(chunk))[None])
            frames = chunk.shape[1] // 2
            vec = torch.cat([states[i][0, :frames].mean(0) for i in self.layers]).double().numpy()
            total += vec * frames
            weight += frames
        return total / weight
