"""Tiny media files generated with PyAV for tests (the project ships no test media)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "astronaut_happy.mp4"


def write_video(path: Path, frames: list[np.ndarray] | None = None, *, fps: int = 10, seconds: float = 1.0,
                size: int = 64, audio: np.ndarray | None = None, audio_rate: int = 16000,
                codec: str = "mpeg4", audio_start_s: float = 0.0) -> Path:
    """Write frames (HxWx3 uint8) and optional mono float audio into ``path``."""
    if frames is None:
        n = max(1, int(seconds * fps))
        frames = [np.full((size, size, 3), (i * 7) % 255, dtype=np.uint8) for i in range(n)]
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        v = out.add_stream(codec, rate=fps)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        a = None
        if audio is not None:
            a = out.add_stream("aac", rate=audio_rate, layout="mono")
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for p in v.encode(frame):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
        if a is not None:
            write_audio_frames(out, a, audio, audio_rate, start_s=audio_start_s)
    return path


def write_audio_frames(out: av.container.OutputContainer, stream: av.stream.Stream, audio: np.ndarray,
                       rate: int, start_s: float = 0.0) -> None:
    """Encode mono float audio whose first sample sits ``start_s`` seconds after the container's time 0."""
    first = round(start_s * rate)
    for start in range(0, len(audio), 1024):
        af = av.AudioFrame.from_ndarray(audio[start:start + 1024].astype(np.float32).reshape(1, -1),
                                        format="fltp", layout="mono")
        af.sample_rate, af.pts, af.time_base = rate, first + start, Fraction(1, rate)
        for p in stream.encode(af):
            out.mux(p)
    for p in stream.encode():
        out.mux(p)


def write_wav(path: Path, audio: np.ndarray, rate: int = 16000) -> Path:
    with av.open(str(path), "w") as out:
        s = out.add_stream("pcm_s16le", rate=rate, layout="mono")
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
        af = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        af.sample_rate, af.pts, af.time_base = rate, 0, Fraction(1, rate)
        for p in s.encode(af):
            out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def example_audio(rate: int = 16000) -> np.ndarray:
    """The example clip's speech track as mono float32."""
    with av.open(str(EXAMPLE)) as c:
        res = av.AudioResampler(format="flt", layout="mono", rate=rate)
        return np.concatenate([f.to_ndarray().reshape(-1) for fr in c.decode(c.streams.audio[0])
                               for f in res.resample(fr)]).astype(np.float32)


def example_frames(limit: int = 1000) -> list[np.ndarray]:
    with av.open(str(EXAMPLE)) as c:
        return [f.to_ndarray(format="rgb24") for _, f in zip(range(limit), c.decode(c.streams.video[0]), strict=False)]


def write_long_sparse_video(path: Path, hours: float = 2.0) -> Path:
    """A few frames spread over ``hours``: the container says it lasts that long, the file is tiny."""
    with av.open(str(path), "w", format="matroska") as out:
        v = out.add_stream("mpeg4", rate=1)
        v.width = v.height = 32
        v.pix_fmt = "yuv420p"
        v.codec_context.time_base = Fraction(1, 1)
        for pts in (0, int(hours * 3600 / 2), int(hours * 3600)):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1)
            for p in v.encode(frame):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
    return path
