"""Read an emotion label out of free text (generated answers, reasoning paragraphs).

The original Emotion-LLaMA scorer takes the last word of the answer and maps anything it does not
recognise to ``neutral``, so a verbose or off-format answer silently counts as "neutral". Here a
label is found by word and synonym (:data:`emollama.labels.SYNONYMS`), negated mentions are
skipped ("not happy"), and text with no usable label is reported as *unparseable* instead of being
guessed. :func:`parse_label_official` reproduces the original behaviour for comparable numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from emollama.labels import SYNONYMS, LabelSet, get_label_set

ParseStatus = Literal["ok", "unparseable", "not_in_set"]

_NEGATORS = re.compile(r"(?:\bnot\b|\bno\b|\bnever\b|n't\b|\bwithout\b|\bhardly\b|\bnor\b|[不没非无]$)")
_CLAUSE_BREAK = re.compile(r"[.,;:!?\u2014\u2013\-\n。，；：！？、]")
_CUE = re.compile(
    r"(?:emotion(?:al state)?|feeling|label|answer|mood)\s*(?:is|:|=|would be|appears to be|seems to be)\s*$"
)


@dataclass(frozen=True)
class ParsedLabel:
    """Outcome of parsing one text: ``label`` is set only when ``status == "ok"``."""

    label: str | None
    status: ParseStatus
    mentions: tuple[str, ...] = field(default=())  # canonical words found, in order, negated ones excluded


@lru_cache(maxsize=1)
def _pattern() -> re.Pattern[str]:
    parts = []
    for key in sorted(SYNONYMS, key=len, reverse=True):
        escaped = re.escape(key)
        parts.append(escaped if not key.isascii() else rf"\b{escaped}\b")
    return re.compile("|".join(parts))


def _is_negated(prefix: str) -> bool:
    """True when the clause right before a mention negates it ("not", "isn't", "不")."""
    clause = _CLAUSE_BREAK.split(prefix)[-1]
    words = clause.strip().split()
    window = " ".join(words[-3:]) if words else clause
    if clause and not clause.isascii():
        window = clause[-2:] if not words else window
    return bool(_NEGATORS.search(window))


def find_mentions(text: str) -> list[tuple[int, str, bool]]:
    """All label mentions as ``(offset, canonical, negated)``, in reading order."""
    lowered = text.lower()
    out = []
    for match in _pattern().finditer(lowered):
        canonical = SYNONYMS[match.group(0)]
        out.append((match.start(), canonical, _is_negated(lowered[: match.start()])))
    return out


def parse_label(text: str, label_set: LabelSet | str) -> ParsedLabel:
    """Find the label a text asserts, restricted to ``label_set``.

    Rules, in order: a mention right after a cue ("the emotion is …") wins; otherwise the last
    non-negated mention in the text (answers that correct themselves end with the correction).
    A label outside the set is reported as ``not_in_set`` rather than mapped.
    """
    labels = get_label_set(label_set)
    mentions = find_mentions(text or "")
    lowered = (text or "").lower()
    positive = [(pos, lab) for pos, lab, neg in mentions if not neg]
    names = tuple(lab for _, lab in positive)
    if not positive:
        return ParsedLabel(None, "unparseable", names)
    cued = [lab for pos, lab in positive if _CUE.search(lowered[:pos].rstrip() + " ")
            or _CUE.search(lowered[:pos])]
    chosen = cued[-1] if cued else positive[-1][1]
    if chosen not in labels:
        in_set = [lab for lab in names if lab in labels]
        if in_set:
            return ParsedLabel(in_set[-1], "ok", names)
        return ParsedLabel(None, "not_in_set", names)
    return ParsedLabel(chosen, "ok", names)


def parse_label_official(text: str, label_set: LabelSet | str) -> str:
    """The original scorer's rule: last word, stripped of punctuation; anything else → neutral."""
    labels = get_label_set(label_set)
    words = re.findall(r"[\w']+", (text or "").lower())
    last = words[-1] if words else ""
    canonical = SYNONYMS.get(last)
    if canonical in labels:
        return canonical
    return "neutral" if "neutral" in labels else labels.labels[0]
