"""Read an emotion label out of free text (generated answers, reasoning paragraphs).

The original Emotion-LLaMA scorer takes the last word of the answer and maps anything it does not
recognise to ``neutral``, so a verbose or off-format answer silently counts as "neutral". Here a
label is found by word and synonym (:data:`emollama.labels.SYNONYMS`), negated mentions ("not
happy", "不开心") and mentions inside questions ("happy? no — sad") are skipped, and text with no
usable label is reported as *unparseable* instead of being guessed. :func:`parse_label_official`
reproduces the original behaviour so numbers stay comparable with published ones.

:func:`is_negated` and :func:`mention_is_question` are public because the evaluation lexicon
(:mod:`emollama.evaluate.lexicon`) applies the same rules to its larger vocabulary; one rule set
means a word is never "negated" for one metric and "asserted" for another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from emollama.labels import SYNONYMS, LabelSet, get_label_set

ParseStatus = Literal["ok", "unparseable", "not_in_set"]

#: Clause boundaries: punctuation, dashes, and contrast words ("not sad but angry": the negation
#: does not reach past "but"). "no doubt" / "without a doubt" are idioms of certainty, not
#: negations of what follows, so they also end a clause.
_CLAUSE_BREAK = re.compile(
    r"[.,;:!?()\[\]\"\u2014\u2013\n。，；：！？、（）]|\s-+\s|\b(?:but|however|though|although|yet|instead|rather)\b"
    r"|\b(?:no|without(?: a)?) doubt\b|但是|可是|不过|而是|然而|却|但"
)
_EN_NEGATORS = frozenset(
    {"not", "no", "never", "without", "hardly", "barely", "nor", "neither", "lacks", "lacking", "nothing"}
)
#: "not only happy but also excited" asserts happy.
_EN_NOT_NEGATING_NEXT = frozenset({"only", "just", "merely", "simply"})
#: A negating character in the few characters before a Chinese mention; 非常 ("very"), 无比
#: ("incomparably"), 不仅/不只/不但 ("not only") look like negations but are not.
_ZH_NEGATION = re.compile(r"不(?![仅只但])|没|未|别|非(?!常)|无(?!比)")
_EN_WORD = re.compile(r"[a-z]+(?:n't|'[a-z]+)?")
_SENTENCE_END = re.compile(r"[.!?。！？\n]")
_CJK = re.compile(r"[\u3400-\u9fff]")

#: Spellings that are also everyday words ("sat down", "the content", "none of them", "I'm mad
#: about it" meaning keen). They count only when they are the whole answer or follow a cue.
AMBIGUOUS: frozenset[str] = frozenset({"down", "content", "none", "mad"})

_CUE = re.compile(
    r"(?:(?:emotion|emotional state|emotional category|feeling|label|answer|mood|category|prediction)s?"
    r"\s*(?:is|are|was|:|=|would be|should be|appears to be|seems to be|of)"
    r"|(?:情绪|情感|情绪状态|情感状态|标签|答案|类别)\s*(?:是|为|：|:))"
    r"\s*(?:(?:most likely|likely|probably|clearly|mainly|primarily|best described as|a|an|one of)\s+){0,3}$"
)


@dataclass(frozen=True)
class ParsedLabel:
    """Outcome of parsing one text: ``label`` is set only when ``status == "ok"``."""

    label: str | None
    status: ParseStatus
    #: canonical words asserted, in reading order (negated mentions and questions excluded)
    mentions: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Mention:
    """One emotion word found in a text, with the context flags the parser needs."""

    start: int
    end: int
    surface: str
    canonical: str
    negated: bool
    question: bool


@lru_cache(maxsize=8)
def _pattern_for(keys: tuple[str, ...]) -> re.Pattern[str]:
    """One alternation, longest spelling first, with word boundaries for alphabetic spellings.

    Chinese has no spaces, so CJK spellings match anywhere; longest-first makes "不满" win over a
    shorter word that starts inside it.
    """
    parts = []
    for key in sorted(keys, key=len, reverse=True):
        escaped = re.escape(key).replace(r"\ ", r"\s+")
        parts.append(escaped if _CJK.search(key) else rf"(?<![\w-]){escaped}(?![\w-])")
    return re.compile("|".join(parts))


def is_negated(prefix: str) -> bool:
    """True when the clause right before a mention negates it ("not", "isn't", "不", "没有").

    Only the last clause counts (punctuation and "but" end a negation's reach) and only its last
    three words (English) or three characters (Chinese), which is where a negation of *this* word
    sits; farther words usually negate something else ("no one noticed he was happy").
    """
    clause = _CLAUSE_BREAK.split(prefix.lower())[-1].rstrip()
    if not clause:
        return False
    if _CJK.search(clause[-1]):
        return bool(_ZH_NEGATION.search(clause[-3:]))
    words = _EN_WORD.findall(clause)[-3:]
    for i, word in enumerate(words):
        if word in _EN_NEGATORS or word.endswith("n't"):
            following = words[i + 1] if i + 1 < len(words) else ""
            if following not in _EN_NOT_NEGATING_NEXT:
                return True
    return False


def mention_is_question(suffix: str) -> bool:
    """True when the sentence a mention sits in ends with a question mark ("Is he happy?")."""
    end = _SENTENCE_END.search(suffix)
    return bool(end) and end.group(0) in "?？"


def scan(text: str, vocabulary: dict[str, str]) -> list[Mention]:
    """Every spelling of ``vocabulary`` (lower-case spelling → value) in ``text``, in reading order."""
    lowered = (text or "").lower()
    if not vocabulary or not lowered:
        return []
    out = []
    for match in _pattern_for(tuple(vocabulary)).finditer(lowered):
        surface = re.sub(r"\s+", " ", match.group(0))
        out.append(
            Mention(
                start=match.start(),
                end=match.end(),
                surface=surface,
                canonical=vocabulary[surface],
                negated=is_negated(lowered[: match.start()]),
                question=mention_is_question(lowered[match.end() :]),
            )
        )
    return out


def find_mentions(text: str) -> list[tuple[int, str, bool]]:
    """All label mentions as ``(offset, canonical, negated)``, in reading order."""
    return [(m.start, m.canonical, m.negated or m.question) for m in scan(text, SYNONYMS)]


def _whole_answer(text: str, mention: Mention) -> bool:
    return re.sub(r"[\W_]+", " ", text.lower()).strip() == mention.surface


def parse_label(text: str, label_set: LabelSet | str) -> ParsedLabel:
    """Find the label a text asserts, restricted to ``label_set``.

    Rules, in order: negated mentions and mentions inside questions are ignored; a mention right
    after a cue ("the emotion is …", "情绪是…") wins, the last cue if there are several;
    otherwise the last remaining mention (answers that correct themselves end with the
    correction). A label outside the set is reported as ``not_in_set`` rather than renamed,
    unless the text also asserts an in-set label, which is then taken.
    """
    labels = get_label_set(label_set)
    text = text or ""
    lowered = text.lower()
    asserted: list[tuple[Mention, bool]] = []
    for mention in scan(text, SYNONYMS):
        if mention.negated or mention.question:
            continue
        cued = bool(_CUE.search(lowered[: mention.start]))
        if mention.surface in AMBIGUOUS and not (cued or _whole_answer(text, mention)):
            continue
        asserted.append((mention, cued))
    names = tuple(m.canonical for m, _ in asserted)
    if not asserted:
        return ParsedLabel(None, "unparseable", names)
    cued_labels = [m.canonical for m, cued in asserted if cued]
    chosen = cued_labels[-1] if cued_labels else asserted[-1][0].canonical
    if chosen in labels:
        return ParsedLabel(chosen, "ok", names)
    in_set = [name for name in names if name in labels]
    if in_set:
        return ParsedLabel(in_set[-1], "ok", names)
    return ParsedLabel(None, "not_in_set", names)


def parse_label_official(text: str, label_set: LabelSet | str) -> str:
    """The original scorer's rule: last word, stripped of punctuation; anything else → neutral.

    Spelling is normalised through :data:`SYNONYMS` (so "Happiness." counts as happy), which only
    removes formatting differences; a last word outside the set still becomes ``neutral`` (or the
    set's first label when the set has no neutral), exactly like the published numbers.
    """
    labels = get_label_set(label_set)
    words = re.findall(r"[\w']+", (text or "").lower())
    last = words[-1] if words else ""
    canonical = SYNONYMS.get(last)
    if canonical in labels:
        return canonical
    return "neutral" if "neutral" in labels else labels.labels[0]
