"""Noise-robustness corruptions (MER2024-NOISE style): the SNR asked for is the SNR added; blur by level."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from emollama.errors import InputError
from emollama.media.corrupt import CorruptionSpec, Corruptor, add_noise, babble, blur
from tests.clips import EXAMPLE
from tests.test_cli import assert_one_line_error, run_cli


def _speech_like(seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    return (0.3 * envelope * np.sin(2 * np.pi * 180 * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.mark.parametrize("snr", [5.0, 7.3, 10.0, 0.0, 20.0])
def test_the_achieved_snr_is_the_requested_one(snr):
    rng = np.random.default_rng(0)
    clean = _speech_like(2.0, rng)
    noise = rng.standard_normal(5000).astype(np.float32) * 3  # shorter than the clip: looped
    mixed, achieved = add_noise(clean, noise, snr)
    measured = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) /
                             np.mean((mixed.astype(np.float64) - clean) ** 2))
    assert achieved == pytest.approx(snr, abs=1e-6)
    assert measured == pytest.approx(snr, abs=0.01)  # float32 rounding of the mix only
    assert mixed.shape == clean.shape and mixed.dtype == np.float32


def test_silence_stays_silent():
    mixed, achieved = add_noise(np.zeros(16000, np.float32), np.ones(100, np.float32), 5.0)
    assert not mixed.any() and achieved == float("inf")


def test_blur_levels_remove_detail_and_keep_the_frame_size():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (90, 160, 3), dtype=np.uint8)
    sharpness = [cv2.Laplacian(cv2.cvtColor(blur(img, level), cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()
                 for level in (0, 1, 2, 4)]
    assert np.array_equal(blur(img, 0), img)
    assert sharpness[0] > sharpness[1] > sharpness[2] > sharpness[3]
    assert all(blur(img, level).shape == img.shape for level in (1, 2, 4, 6))


def test_draws_are_reproducible_and_never_use_the_clip_itself():
    rng = np.random.default_rng(2)
    tracks = {f"c{i}.mp4": _speech_like(1.0 + i / 4, rng) for i in range(5)}
    spec = CorruptionSpec.parse(["audio-noise:snr=5..10", "blur:levels=1,2,4"])

    def run(seed: int) -> list[dict]:
        corruptor = Corruptor(spec, seed, list(tracks), tracks.get)
        return [corruptor.draw(name).to_dict() for name in tracks]

    first, again, other = run(7), run(7), run(8)
    assert first == again and first != other
    for name, draw in zip(tracks, first, strict=True):
        assert 5.0 <= draw["snr_db"] <= 10.0 and draw["blur_level"] in (1, 2, 4)
        assert draw["noise"].startswith("babble: ") and name not in draw["noise"]
        assert len(draw["noise"].split(", ")) == 3
    lonely = Corruptor(spec, 0, ["only.mp4"], tracks.get).draw("only.mp4")
    assert lonely.noise.startswith("speech-shaped noise") and lonely.noise_track.size > 0
    assert babble([tracks["c0.mp4"]], 100).shape == (100,)


@pytest.mark.parametrize("bad", ["audio-noise:snr=ten", "audio-noise:snr=10..5", "blur:levels=1,x", "blur:levels=9",
                                 "echo:level=3", "blur:snr=5"])
def test_bad_specs_are_input_errors(bad):
    with pytest.raises(InputError, match="--corrupt"):
        CorruptionSpec.parse([bad])


def test_eval_model_clip_records_what_it_applied(tmp_path: Path):
    manifest = tmp_path / "clips.csv"
    manifest.write_text(f"path,label\n{EXAMPLE},happy\n")
    out = tmp_path / "noisy"
    proc = run_cli("eval-model", "clip", "--manifest", str(manifest), "--out", str(out), "--labels", "dfew7",
                   "--corrupt", "audio-noise:snr=5..10", "--corrupt", "blur:levels=2", "--seed", "3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row = json.loads((out / "per_clip.jsonl").read_text().splitlines()[0])
    c = row["corruption"]
    assert 5.0 <= c["snr_db"] <= 10.0 and c["achieved_snr_db"] == pytest.approx(c["snr_db"], abs=0.01)
    assert c["blur_level"] == 2 and c["noise"].startswith("speech-shaped")  # one clip: no other talkers
    assert set(row["modality_weights"]) >= {"face"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["run"] == {"fusion": "learned", "corrupt": ["audio-noise:snr=5..10", "blur:levels=2"], "seed": 3}
    assert "face" in metrics["mean_modality_weight"]
    assert_one_line_error(run_cli("eval-model", "clip", "--manifest", str(manifest), "--out", str(tmp_path / "x"),
                                  "--corrupt", "blur:levels=99"), "--corrupt")
