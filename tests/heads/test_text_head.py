"""The shipped text head: English through MiniLM, other languages through e5, calibrated, wired into analyze."""

from __future__ import annotations

from pathlib import Path

import pytest

from emollama.heads.linear import LinearHead
from emollama.heads.text import E5_HEAD_STEM, TextEmotionHead


@pytest.fixture(scope="module")
def head() -> TextEmotionHead:
    return TextEmotionHead()


@pytest.mark.parametrize(("text", "language", "expected"), [
    ("I'm so happy, this is the best day ever!", None, "happy"),
    ("Get out! I hate you, you liar!", None, "angry"),
    ("I miss her so much, I can't stop crying.", "en", "sad"),
    ("我太开心了，今天真是太好了！", "zh", "happy"),
])
def test_clear_sentences(head: TextEmotionHead, text: str, language: str | None, expected: str):
    probs = head.analyze(text, language)
    assert max(probs, key=probs.get) == expected
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-3)


def test_language_routing():
    assert TextEmotionHead.is_english("plain ascii words", None)
    assert TextEmotionHead.is_english("I don’t know what you’re talking about", None)
    assert not TextEmotionHead.is_english("我很好", None)
    assert not TextEmotionHead.is_english("plain ascii words", "de")


def test_saved_head_round_trips(tmp_path: Path):
    h = LinearHead.load(E5_HEAD_STEM)
    h.save(tmp_path / "copy")
    again = LinearHead.load(tmp_path / "copy")
    assert again.labels == h.labels and again.temperature == h.temperature
    assert (again.weight == h.weight).all()


def test_goemotions_dev_sample_beats_chance(head: TextEmotionHead, shared_data: Path):
    """200 single-label dev rows: far above the 1/7 chance level (the card reports the full dev numbers)."""
    names = (shared_data / "text" / "goemotions_ekman_labels.txt").read_text().split()
    rows = [line.split("\t") for line in (shared_data / "text" / "goemotions_ekman_dev.tsv").read_text().splitlines()]
    rows = [r for r in rows if "," not in r[1]][:200]
    probs = head.predict([r[0] for r in rows], "en")
    from emollama.labels import normalize_label

    correct = sum(head.labels[p.argmax()] == normalize_label(names[int(r[1])]) for p, r in zip(probs, rows,
                                                                                               strict=True))
    assert correct / len(rows) > 0.45
