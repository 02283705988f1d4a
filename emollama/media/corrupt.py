"""Controlled corruptions of decoded media, for noise-robustness checks (the MER2024-NOISE protocol).

MER2024-NOISE adds background noise to the audio at a random signal-to-noise ratio between 5 and
10 dB and blurs the video by down- and up-sampling. ``emollama eval-model clip --corrupt SPEC``
applies the same kinds of damage to each clip *after* decoding (the file is never touched):

* ``audio-noise:snr=LO..HI``: additive noise at an SNR drawn uniformly in [LO, HI] dB, where the
  SNR is 10·log10 of the clip's mean-square signal over the added noise's, over the whole track.
  MER2024 used MUSAN noise, which does not ship; the stand-in is **babble** — the speech of
  :data:`BABBLE_TALKERS` other clips of the same run, each brought to the same loudness, summed
  and looped to length — or, when the run has no other clip with sound, speech-shaped noise
  (white noise through a first-order 100-4,000 Hz band-pass), said so in the record.
* ``blur:levels=1,2,4``: per clip a level L drawn from the list; every sampled frame is reduced L
  times with ``cv2.pyrDown`` (each halves the size after a Gaussian blur) and brought back with L
  ``cv2.pyrUp`` steps, so level 1 halves and level 2 quarters the detail the face model sees.

Each clip's draws come from a generator seeded by the run's seed and the clip's file name, so a
clip is damaged the same way whatever else the manifest holds or in which order; the babble
talkers come from a pool of at most :data:`BABBLE_POOL` clips chosen once per run (bounded memory
and decoding, however long the manifest). Each clip's draws are recorded
(:meth:`ClipCorruption.to_dict`) next to its result.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from emollama.errors import InputError
from emollama.media.decode import Frame

#: Other clips mixed into one babble track.
BABBLE_TALKERS = 3
#: Clips (of the run) whose sound may be mixed into babble; decoded once, at most this many.
BABBLE_POOL = 8
#: Seconds of each pool clip kept for babble (looped to the clip's length when shorter).
BABBLE_SECONDS = 30.0
_SPEC = re.compile(r"^(audio-noise|blur):(\w+)=(.+)$")


@dataclass(frozen=True)
class CorruptionSpec:
    """What to damage, parsed from the ``--corrupt`` values."""

    snr_db: tuple[float, float] | None = None
    blur_levels: tuple[int, ...] = ()

    @classmethod
    def parse(cls, values: Sequence[str]) -> CorruptionSpec:
        snr: tuple[float, float] | None = None
        levels: tuple[int, ...] = ()
        seen: set[str] = set()
        for value in values:
            m = _SPEC.match(value.strip())
            if m is None:
                raise InputError(f"--corrupt {value!r}: write audio-noise:snr=LO..HI or blur:levels=1,2,4")
            kind, key, arg = m.groups()
            if kind in seen:
                raise InputError(f"--corrupt {value!r}: {kind} is given twice; give each kind once")
            seen.add(kind)
            if kind == "audio-noise" and key == "snr":
                snr = _parse_range(value, arg)
            elif kind == "blur" and key == "levels":
                levels = _parse_levels(value, arg)
            else:
                raise InputError(f"--corrupt {value!r}: {kind} takes {'snr' if kind == 'audio-noise' else 'levels'}=")
        return cls(snr, levels)

    @property
    def active(self) -> bool:
        return self.snr_db is not None or bool(self.blur_levels)


def _parse_range(value: str, arg: str) -> tuple[float, float]:
    try:
        lo, _, hi = arg.partition("..")
        low, high = float(lo), float(hi or lo)
    except ValueError:
        raise InputError(f"--corrupt {value!r}: snr must be a number or a range LO..HI (dB)") from None
    if not (np.isfinite(low) and np.isfinite(high)) or low > high or not -20 <= low <= 60 or not -20 <= high <= 60:
        raise InputError(f"--corrupt {value!r}: snr range must be LO..HI with -20 <= LO <= HI <= 60 dB")
    return low, high


def _parse_levels(value: str, arg: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(v) for v in arg.split(","))
    except ValueError:
        raise InputError(f"--corrupt {value!r}: levels must be whole numbers, e.g. levels=1,2,4") from None
    if not levels or any(not 0 <= v <= 6 for v in levels):
        raise InputError(f"--corrupt {value!r}: blur levels must be in 0..6")
    return levels


@dataclass
class ClipCorruption:
    """One clip's draws, and the functions that apply them to its decoded audio and frames."""

    snr_db: float | None = None
    blur_level: int | None = None
    noise: str | None = None  # "babble: a, b, c" or "speech-shaped noise"
    noise_track: np.ndarray | None = field(default=None, repr=False)
    achieved_snr_db: float | None = None

    def audio(self, audio: np.ndarray | None) -> np.ndarray | None:
        if audio is None or self.snr_db is None or self.noise_track is None or audio.size == 0:
            return audio
        mixed, self.achieved_snr_db = add_noise(audio, self.noise_track, self.snr_db)
        return mixed

    def frames(self, frames: Iterator[Frame]) -> Iterator[Frame]:
        for frame in frames:
            yield replace(frame, rgb=blur(frame.rgb, self.blur_level)) if self.blur_level else frame

    def to_dict(self) -> dict:
        return {"snr_db": None if self.snr_db is None else round(self.snr_db, 2),
                "achieved_snr_db": None if self.achieved_snr_db is None else round(self.achieved_snr_db, 2),
                "noise": self.noise, "blur_level": self.blur_level}


def add_noise(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> tuple[np.ndarray, float]:
    """``signal`` plus ``noise`` (looped or cut to its length) scaled to ``snr_db``; and the SNR achieved.

    A silent signal stays silent (no SNR can be defined against zero power).
    """
    signal = np.asarray(signal, dtype=np.float32)
    p_signal = float(np.mean(signal.astype(np.float64) ** 2))
    if p_signal <= 0 or noise.size == 0:
        return signal, float("inf")
    reps = int(np.ceil(signal.size / noise.size))
    n = np.tile(np.asarray(noise, dtype=np.float64), reps)[:signal.size]
    p_noise = float(np.mean(n ** 2))
    if p_noise <= 0:
        return signal, float("inf")
    n *= np.sqrt(p_signal / (p_noise * 10 ** (snr_db / 10)))
    achieved = 10 * np.log10(p_signal / float(np.mean(n ** 2)))
    return (signal + n).astype(np.float32), float(achieved)


def blur(rgb: np.ndarray, level: int) -> np.ndarray:
    """``level`` pyrDown steps then ``level`` pyrUp steps, back to the frame's own size."""
    h, w = rgb.shape[:2]
    img = rgb
    sizes = []
    for _ in range(level):
        if min(img.shape[:2]) < 2:
            break
        sizes.append((img.shape[1], img.shape[0]))
        img = cv2.pyrDown(img)
    for size in reversed(sizes):
        img = cv2.pyrUp(img, dstsize=size)
    return img if img.shape[:2] == (h, w) else cv2.resize(img, (w, h))


def speech_shaped_noise(n: int, rng: np.random.Generator, rate: int = 16_000) -> np.ndarray:
    """White noise through a first-order band-pass (100-4,000 Hz): a generated stand-in for babble."""
    from scipy.signal import butter, lfilter

    b, a = butter(1, [100 / (rate / 2), 4000 / (rate / 2)], btype="band")
    return lfilter(b, a, rng.standard_normal(n)).astype(np.float32)


def babble(tracks: Sequence[np.ndarray], length: int) -> np.ndarray:
    """Equal-loudness sum of ``tracks``, each looped to ``length`` samples."""
    out = np.zeros(length, np.float64)
    for t in tracks:
        t = np.asarray(t, dtype=np.float64)
        rms = np.sqrt(np.mean(t ** 2))
        if t.size == 0 or rms <= 0:
            continue
        out += np.tile(t, int(np.ceil(length / t.size)))[:length] / rms
    return out.astype(np.float32)


class Corruptor:
    """Draws each clip's corruption from (seed, clip name); babble from a bounded pool of the run's clips."""

    def __init__(self, spec: CorruptionSpec, seed: int, sources: Sequence[str],
                 load_audio: Callable[[str], np.ndarray | None]) -> None:
        self.spec = spec
        self.seed = seed
        self.load_audio = load_audio
        pool = np.random.default_rng(seed).permutation(len(sources))[:BABBLE_POOL + 1] if len(sources) else []
        self.pool = [sources[i] for i in pool]  # one spare: a clip never babbles over itself
        self._audio: dict[str, np.ndarray | None] = {}

    def _track(self, source: str) -> np.ndarray | None:
        if source not in self._audio:
            try:
                audio = self.load_audio(source)
                self._audio[source] = None if audio is None else audio[:int(BABBLE_SECONDS * 16_000)]
            except Exception:  # noqa: BLE001 - an unreadable neighbour is simply not a talker
                self._audio[source] = None
        return self._audio[source]

    def draw(self, source: str, length_hint: int = 16_000 * 10) -> ClipCorruption:
        """The corruption of the clip ``source`` (its own sound is never part of its babble)."""
        rng = np.random.default_rng([self.seed, zlib.crc32(Path(source).name.encode())])
        c = ClipCorruption()
        if self.spec.snr_db is not None:
            lo, hi = self.spec.snr_db
            c.snr_db = float(rng.uniform(lo, hi)) if hi > lo else lo
            others = [s for s in self.pool if s != source][:BABBLE_POOL]
            talkers = []
            for i in rng.permutation(len(others)) if others else []:
                track = self._track(others[i])
                if track is not None and track.size and float(np.abs(track).max()) > 0:
                    talkers.append((others[i], track))
                if len(talkers) == BABBLE_TALKERS:
                    break
            if talkers:
                longest = max(t.size for _, t in talkers)
                c.noise_track = babble([t for _, t in talkers], max(longest, length_hint))
                c.noise = "babble: " + ", ".join(Path(name).name for name, _ in talkers)
            else:
                c.noise_track = speech_shaped_noise(length_hint, rng)
                c.noise = "speech-shaped noise (no other clip with sound in this run)"
        if self.spec.blur_levels:
            c.blur_level = int(rng.choice(self.spec.blur_levels))
        return c
