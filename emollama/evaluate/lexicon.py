"""The shipped emotion wheel: emotion words → synonym group (level 2) → basic category (level 1).

Both offline proxies and MER-OV grouping go through this one table, so they are deterministic and
identical across runs and machines (the original MER-OV asks GPT to group synonyms per sample, so
its grouping depends on the prediction being scored). The data is
``emollama/assets/emotion_wheel/wheel.json``; its ``version`` is written into every metrics file.

Extraction from free text reuses :func:`emollama.label_parsing.is_negated` and the question rule,
so "he is not angry" contributes no *angry* here either.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from emollama.label_parsing import scan

#: Level-1 category of each canonical label in :mod:`emollama.labels` (MER's "worried" is anxious
#: fear; contempt sits with disgust as a rejection emotion; calm is a neutral state; bored is a
#: low-energy negative state, so it joins sad — the same calls the wheel data makes).
CANONICAL_TO_LEVEL1: dict[str, str] = {
    "neutral": "neutral",
    "happy": "happy",
    "angry": "angry",
    "worried": "fear",
    "sad": "sad",
    "surprise": "surprise",
    "fear": "fear",
    "doubt": "doubt",
    "contempt": "disgust",
    "disgust": "disgust",
    "calm": "neutral",
    "bored": "sad",
}


@dataclass(frozen=True)
class WheelEntry:
    """Where one surface form sits on the wheel."""

    word: str
    group: str  # level-2 head word
    category: str  # level-1 basic category


@dataclass(frozen=True)
class EmotionWheel:
    """Lookup tables built from the wheel file; immutable so it can be cached process-wide."""

    version: int
    entries: dict[str, WheelEntry]
    categories: tuple[str, ...]
    groups: dict[str, str]  # level-2 head → level-1 category

    def lookup(self, word: str) -> WheelEntry | None:
        """Entry for a single word or phrase (case and spacing ignored), or ``None``."""
        key = re.sub(r"\s+", " ", word.strip().lower()).strip(" .!?,;:'\"")
        key = key.replace("_", " ")
        entry = self.entries.get(key)
        if entry is None and "-" in key:
            entry = self.entries.get(key.replace("-", " "))
        return entry


def _validate(data: dict) -> None:
    if data.get("format") != "emollama.emotion-wheel/1":
        raise ValueError("emotion wheel file has an unknown format")


@lru_cache(maxsize=1)
def load_wheel() -> EmotionWheel:
    """Load the packaged wheel; every surface form must belong to exactly one group."""
    raw = resources.files("emollama").joinpath("assets/emotion_wheel/wheel.json").read_text("utf-8")
    data = json.loads(raw)
    _validate(data)
    entries: dict[str, WheelEntry] = {}
    groups: dict[str, str] = {}
    for category, heads in data["level1"].items():
        for head, words in heads.items():
            groups[head] = category
            for word in words:
                key = word.lower()
                if key in entries:
                    raise ValueError(f"emotion wheel lists {word!r} twice")
                entries[key] = WheelEntry(key, head, category)
    return EmotionWheel(
        version=int(data["version"]), entries=entries, categories=tuple(data["level1"]), groups=groups
    )


@dataclass(frozen=True)
class Extraction:
    """Emotion words asserted by a text, with their groups and categories (reading order, unique)."""

    words: tuple[str, ...]
    groups: tuple[str, ...]
    categories: tuple[str, ...]
    negated: tuple[str, ...]  # words found but negated or asked about (for the report)


def extract_emotions(text: str | None, wheel: EmotionWheel | None = None) -> Extraction:
    """All wheel words a text asserts; negated mentions and questions are kept aside, not counted."""
    wheel = wheel or load_wheel()
    vocabulary = {word: word for word in wheel.entries}
    words: list[str] = []
    negated: list[str] = []
    for mention in scan(text or "", vocabulary):
        target = negated if (mention.negated or mention.question) else words
        if mention.canonical not in target:
            target.append(mention.canonical)
    groups = _unique(wheel.entries[w].group for w in words)
    categories = _unique(wheel.entries[w].category for w in words)
    return Extraction(tuple(words), groups, categories, tuple(negated))


@dataclass(frozen=True)
class GroupedSet:
    """An open-vocabulary label list mapped to wheel groups; ``unknown`` words keep their own name."""

    groups: frozenset[str]
    categories: frozenset[str]
    unknown: tuple[str, ...]


def group_words(words: tuple[str, ...] | list[str], wheel: EmotionWheel | None = None) -> GroupedSet:
    """Map each word to its synonym group; a word not on the wheel stands for itself.

    Unknown words are kept (as their lower-cased form) rather than dropped so that a prediction of
    an emotion the table lacks can still match an identical reference word, and they are listed in
    the report so the table can be extended.
    """
    wheel = wheel or load_wheel()
    groups: set[str] = set()
    categories: set[str] = set()
    unknown: list[str] = []
    for word in words:
        entry = wheel.lookup(word)
        if entry is None:
            key = re.sub(r"\s+", " ", word.strip().lower())
            if key:
                groups.add(key)
                if key not in unknown:
                    unknown.append(key)
            continue
        groups.add(entry.group)
        categories.add(entry.category)
    return GroupedSet(frozenset(groups), frozenset(categories), tuple(unknown))


def _unique(items) -> tuple[str, ...]:
    out: list[str] = []
    for item in items:
        if item not in out:
            out.append(item)
    return tuple(out)
