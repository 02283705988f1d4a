"""The shipped emotion wheel: emotion words → synonym group (level 2) → basic category (level 1).

Both offline proxies and MER-OV grouping go through this table, so they are deterministic and
identical across runs and machines (the original MER-OV asks GPT to group synonyms per sample, so
its grouping depends on the prediction being scored). The data is
``emollama/assets/emotion_wheel/wheel.json`` (version 1); its ``version`` is written into every
metrics file. Version 2 (``load_wheel(2)``) adds ``wheel_v2_additions.json`` and, for a word it
does not list, tries its other word forms (relax → relaxed) and drops hedges ("slightly anxious",
"sense of happiness"); it is used to *group* open-vocabulary lists. Extraction from free text keeps
the version-1 vocabulary, whose words are unambiguous in prose ("low", "free" or "cold" are not).

Extraction from free text reuses :func:`emollama.label_parsing.is_negated` and the question rule,
so "he is not angry" contributes no *angry* here either.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
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
    #: Try other word forms and drop hedges when a word is not listed (version 2 and later).
    word_forms: bool = False

    def lookup(self, word: str) -> WheelEntry | None:
        """Entry for a single word or phrase (case and spacing ignored), or ``None``."""
        key = re.sub(r"\s+", " ", word.strip().lower()).strip(" .!?,;:'\"")
        key = key.replace("_", " ")
        entry = self._exact(key)
        if entry is None and self.word_forms:
            entry = next(filter(None, map(self._exact, _variants(key))), None)
        return entry

    def _exact(self, key: str) -> WheelEntry | None:
        entry = self.entries.get(key)
        if entry is None and "-" in key:
            entry = self.entries.get(key.replace("-", " "))
        return entry


#: Hedges and framing words around an emotion word in open-vocabulary lists ("slightly anxious",
#: "a sense of happiness", "positive emotions", "anxious about"): dropped before the word forms.
_LEADING = (
    "a little", "a bit", "a sense of", "sense of", "full of", "slightly", "slight", "somewhat", "mildly", "very",
    "extremely", "deeply", "highly", "quite", "rather", "really", "so", "too", "more", "most", "feeling", "feel",
    "feels", "felt", "emotional", "emotionally", "overwhelming", "intense", "great", "mild", "some", "strong",
)
_TRAILING = ("emotions", "emotion", "feelings", "feeling", "mood", "state", "for", "with", "about", "to", "of", "at",
             "by", "towards", "toward")
#: (suffix, replacement) pairs that undo English inflection and derivation, longest first within a family.
_SUFFIXES = (
    ("iness", "y"), ("fulness", "ful"), ("ness", ""), ("ments", ""), ("ment", ""), ("ations", ""), ("ation", "e"),
    ("ation", ""), ("ities", ""), ("ity", ""), ("ied", "y"), ("ies", "y"), ("ily", "y"), ("edly", ""), ("ingly", ""),
    ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", ""), ("ly", ""), ("es", ""), ("s", ""), ("ful", ""), ("ous", ""),
    ("y", ""),
)
#: Endings tried on each base form to find the listed one (relax → relaxed, blame → blaming).
_ENDINGS = ("", "ed", "d", "ing", "ment", "ness", "ful", "ation", "ion", "y", "ity", "ous", "s")


def _variants(key: str) -> list[str]:
    """Other spellings to try for a word the wheel does not list, most literal first (deterministic order)."""
    phrases = [key]
    for part in re.split(r"\s*(?:/|\bor\b|\band\b|,)\s*", key):
        if part and part != key:
            phrases.append(part)  # "angry/displeased", "happy and satisfied": the first part that resolves
    out: list[str] = []
    for phrase in phrases:
        core = _strip_hedges(phrase)
        for candidate in (phrase, core, *(_forms(core) if " " not in core else ())):
            if candidate and candidate not in out:
                out.append(candidate)
    return out[1:]


def _strip_hedges(phrase: str) -> str:
    """Drop leading hedges and trailing framing words until none is left."""
    changed = True
    while changed:
        changed = False
        for hedge in _LEADING:
            if phrase.startswith(hedge + " "):
                phrase, changed = phrase[len(hedge) + 1 :], True
        for tail in _TRAILING:
            if phrase.endswith(" " + tail):
                phrase, changed = phrase[: -len(tail) - 1], True
    return phrase


def _forms(word: str) -> list[str]:
    """Word forms sharing a base with ``word``: strip one suffix (or none), then add each ending."""
    bases = [word]
    for suffix, replacement in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)] + replacement
            bases.append(base)
            if len(base) > 3 and base[-1] == base[-2] and base[-1] not in "aeiouls":
                bases.append(base[:-1])  # upsetting → upsett → upset
    out: list[str] = []
    for base in bases:
        stems = [base, base[:-1]] if base.endswith("e") else [base]
        if base.endswith("y"):
            stems.append(base[:-1] + "i")  # worry → worri(ed)
        for stem in stems:
            for ending in _ENDINGS:
                form = stem + ending
                if form not in out:
                    out.append(form)
    return out


def _validate(data: dict) -> None:
    if data.get("format") != "emollama.emotion-wheel/1":
        raise ValueError("emotion wheel file has an unknown format")


def _read_asset(name: str) -> dict:
    data = json.loads(resources.files("emollama").joinpath(f"assets/emotion_wheel/{name}").read_text("utf-8"))
    _validate(data)
    return data


#: Wheel versions that can be loaded, each with the files it is built from (later ones extend).
WHEEL_VERSIONS = {1: ("wheel.json",), 2: ("wheel.json", "wheel_v2_additions.json")}


@cache
def load_wheel(version: int = 1) -> EmotionWheel:
    """Load a packaged wheel version; every surface form must belong to exactly one group.

    Version 1 is the default because the EMER proxies and free-text extraction are defined on it.
    """
    if version not in WHEEL_VERSIONS:
        raise ValueError(f"emotion wheel version {version} does not exist (known: {sorted(WHEEL_VERSIONS)})")
    entries: dict[str, WheelEntry] = {}
    groups: dict[str, str] = {}
    categories: list[str] = []
    for name in WHEEL_VERSIONS[version]:
        for category, heads in _read_asset(name)["level1"].items():
            if category not in categories:
                categories.append(category)
            for head, words in heads.items():
                if groups.setdefault(head, category) != category:
                    raise ValueError(f"emotion wheel group {head!r} is in two categories")
                for word in words:
                    key = word.lower()
                    if key in entries:
                        raise ValueError(f"emotion wheel lists {word!r} twice")
                    entries[key] = WheelEntry(key, head, category)
    return EmotionWheel(
        version=version, entries=entries, categories=tuple(categories), groups=groups, word_forms=version >= 2
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
