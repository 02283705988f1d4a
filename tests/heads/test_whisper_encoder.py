"""The Whisper encoder rebuilt in PyTorch from CTranslate2 weights: file parsing, shapes, and parity."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from emollama.errors import ModelUnavailableError
from emollama.heads.whisper_encoder import (
    WhisperEncoder,
    WhisperEncoderConfig,
    WhisperLayerEmbedder,
    read_ct2_variables,
)


def _string(s: str) -> bytes:
    raw = s.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def write_ct2(path: Path, variables: dict[str, np.ndarray]) -> None:
    """A minimal CTranslate2 model.bin: header, then name/rank/dims/dtype/bytes per variable."""
    codes = {np.dtype(np.float32): 0, np.dtype(np.int8): 1, np.dtype(np.float16): 4}
    out = struct.pack("<I", 6) + _string("WhisperSpec") + struct.pack("<I", 3) + struct.pack("<I", len(variables))
    for name, arr in variables.items():
        out += _string(name) + struct.pack("<B", arr.ndim) + struct.pack("<" + "I" * arr.ndim, *arr.shape)
        out += struct.pack("<BI", codes[arr.dtype], arr.nbytes) + arr.tobytes()
    path.write_bytes(out + struct.pack("<I", 0))  # no aliases


def tiny_encoder_variables(cfg: WhisperEncoderConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Random weights under CTranslate2's encoder names, the way its Whisper converter writes them."""
    rng = np.random.default_rng(seed)
    w, m = cfg.width, cfg.n_mels

    def r(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.1).astype(np.float16)

    v = {"decoder/embeddings/weight": r(11, w), "encoder/num_heads": np.array(cfg.heads, dtype=np.int8),
         "encoder/conv1/weight": r(w, m, 3), "encoder/conv1/bias": r(w), "encoder/conv2/weight": r(w, w, 3),
         "encoder/conv2/bias": r(w), "encoder/position_encodings/encodings": r(cfg.max_positions, w),
         "encoder/layer_norm/gamma": r(w) + 1, "encoder/layer_norm/beta": r(w)}
    for i in range(cfg.layers):
        p = f"encoder/layer_{i}/"
        for norm in ("self_attention/layer_norm", "ffn/layer_norm"):
            v[p + norm + "/gamma"], v[p + norm + "/beta"] = r(w) + 1, r(w)
        for name, (o, i_) in {"self_attention/linear_0": (3 * w, w), "self_attention/linear_1": (w, w),
                              "ffn/linear_0": (4 * w, w), "ffn/linear_1": (w, 4 * w)}.items():
            v[p + name + "/weight"], v[p + name + "/bias"] = r(o, i_), r(o)
    return v


TINY = WhisperEncoderConfig(n_mels=80, width=16, layers=2, heads=2, max_positions=50)


def test_reads_ct2_file_and_builds_encoder(tmp_path: Path):
    path = tmp_path / "model.bin"
    variables = tiny_encoder_variables(TINY)
    write_ct2(path, variables)
    enc_vars = read_ct2_variables(path)
    assert "embeddings/weight" not in enc_vars and enc_vars["conv1/weight"].dtype == np.float32
    np.testing.assert_array_equal(enc_vars["layer_1/ffn/linear_1/bias"],
                                  variables["encoder/layer_1/ffn/linear_1/bias"].astype(np.float32))
    enc = WhisperEncoder.from_ct2(path)
    assert enc.config == TINY
    states = enc(torch.randn(2, 80, 40))
    assert len(states) == TINY.layers + 1 and all(s.shape == (2, 20, 16) for s in states)
    # The first state is the stem plus the stored positions: the weights really came from the file.
    assert torch.equal(enc.positions, torch.from_numpy(variables["encoder/position_encodings/encodings"]).float())


def test_embedder_pools_long_audio_in_windows(tmp_path: Path):
    path = tmp_path / "model.bin"
    write_ct2(path, tiny_encoder_variables(TINY))
    embed = WhisperLayerEmbedder((1, 2), WhisperEncoder.from_ct2(path))
    audio = np.random.default_rng(0).standard_normal(16000 * 3).astype(np.float32) * 0.1
    vec = embed(audio)  # 3 s = 300 mel frames, three times the 1-s window of this tiny encoder
    assert vec.shape == (32,) and np.isfinite(vec).all()
    with pytest.raises(ValueError, match="20 ms"):
        embed(np.zeros(100, dtype=np.float32))
    with pytest.raises(ValueError, match="layers"):
        WhisperLayerEmbedder((5,), embed.encoder)


def test_truncated_or_foreign_file_is_a_clear_error(tmp_path: Path):
    path = tmp_path / "model.bin"
    write_ct2(path, tiny_encoder_variables(TINY))
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(ModelUnavailableError, match="not a complete"):
        WhisperEncoder.from_ct2(path)
    write_ct2(path, {"decoder/x": np.zeros(3, np.float32)})
    with pytest.raises(ModelUnavailableError, match="no variables"):
        WhisperEncoder.from_ct2(path)
    quantised = tiny_encoder_variables(TINY)
    quantised["encoder/conv1/weight"] = np.ones((16, 80, 3), np.int8)  # an int8 conversion
    write_ct2(path, quantised)
    with pytest.raises(ModelUnavailableError, match="quantised"):
        WhisperEncoder.from_ct2(path)


def test_matches_ctranslate2_on_the_installed_whisper_base():
    """Same last-layer output as faster-whisper's own encoder on a padded 30-s input."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    from faster_whisper import WhisperModel

    from emollama.packaged import whisper_base_dir

    try:
        model_dir = whisper_base_dir()
    except ModelUnavailableError as exc:
        pytest.skip(str(exc))
    ours = WhisperEncoder.from_ct2(model_dir / "model.bin")
    theirs = WhisperModel(str(model_dir), device="cpu", compute_type="float32", cpu_threads=1)
    t = np.arange(16000) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t)).astype(np.float32)
    mel = np.zeros((80, 3000), dtype=np.float32)
    feats = theirs.feature_extractor(audio)
    mel[:, :feats.shape[1]] = feats
    ref = np.array(theirs.model.encode(ctranslate2.StorageView.from_array(mel[None]), to_cpu=True))[0]
    with torch.inference_mode():
        got = ours(torch.from_numpy(mel[None]))[-1][0].numpy()
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() < 0.01 * np.abs(ref).max()
