"""Grounding check: do the cues a reasoning paragraph cites match the clip's measured clues?

Deterministic and offline: it compares what a paragraph *claims* (an action unit, a pitch or speech
rate statement, a quote, "there is no face") with the :class:`~emollama.schema.Clues` of the same
clip, so the three tiers' reasoning can be compared on the same footing: the ``clues`` tier writes
its text from the measurements (it should be grounded by construction), the ``llm`` and
``emotion-llama`` tiers generate freely and may invent AUs, voice qualities or quotes.

A paragraph is split into **cues** (:func:`cited_cues`), each judged ``matched``,
``contradicted`` or ``unverifiable`` with a short reason (:func:`check_grounding`). Its status:

* ``grounded``: at least one cue matched and none contradicted;
* ``contradicted``: at least one cue contradicted;
* ``unverified``: it cites cues, but none could be checked (e.g. only AUs the detector does not
  measure, or a pitch claim on a clip whose pitch was not measured);
* ``uncited``: nothing checkable at all.

Quoted passages (“…”, "…", ‘…’, '…') are taken out of the text before anything else is read, so
the words a person says never count as claims about the face or voice.

Matching rules (the thresholds are the describe module's, :mod:`emollama.describe`, so the
``clues`` tier's wording is judged by the rules it was written with):

**AU** (type ``au``). Cited as a code (``AU12``, ``AU 6``, with an optional intensity: ``AU12 2.8``,
``(AU09 1.1)``, ``AU12 at 3``) or as an action phrase: the describe module's own phrase for each AU
(:data:`emollama.describe.AU_PHRASES`, e.g. "the nose wrinkles"), the FACS names of
:data:`emollama.perception.action_units.AU_DESCRIPTIONS` ("nose wrinkler"), and a few common
paraphrases (:data:`AU_PARAPHRASES`: "smile" → AU12, "frown" → AU04, "raised eyebrows" → AU01 or
AU02, "open mouth" → AU25 or AU26). A phrase next to a code for the same AU in one sentence counts
once.

* face status not ``ok`` → contradicted (no face, so no AU can have been seen);
* an AU the detector does not measure (not in ``au_names`` nor the peak frame) → unverifiable;
* a positive claim matches when the AU reaches :data:`AU_PRESENT` (0.5) at the peak frame or in any
  frame; below that everywhere it is contradicted; a phrase naming several AUs needs one of them;
* a stated intensity must equal the peak-frame value to the number's own precision (see
  *numbers*), else contradicted;
* a negated claim ("no smile", "without AU12", "AU12 is absent") matches when the AU stays below
  :data:`AU_MENTIONED` (1.0, the level from which :func:`~emollama.describe.describe_aus` names an
  AU) at the peak frame, else contradicted; "the face stays close to its resting state" / "at
  rest" / "no action unit above 1" (key ``rest``) likewise needs every AU but blinks below 1.0.

**Voice** (type ``voice``). Statements about pitch level (high/low, "N semitones above/below"),
pitch range (wide/animated, narrow/flat/monotone, moderate), loudness (bursts, loud, shouting;
even/steady), speech rate (fast/rapid/quick, slow), the end of the utterance (rises, falls),
breathy/rough/hoarse voice quality, arousal words after "sounds" / before "voice" or "tone"
(agitated, energetic, excited, tense; calm, relaxed, quiet, soft; subdued, low-energy; even), the
MERR tone words after "sounds" (:data:`emollama.merr.tone.TONE_WORDS`), the voice model's
pleasant/unpleasant reading, the seconds of speech and the syllables per second.

* voice status not ``ok`` → contradicted; the measurement behind the claim missing → unverifiable;
* a graded claim matches exactly when :func:`~emollama.describe.describe_voice` (or
  :func:`~emollama.describe.arousal_word`, :func:`~emollama.describe.voice_valence_sign`,
  :func:`~emollama.merr.tone.choose_tone`) would say the same of this clip: "fast" needs the rate
  ≥ 1.25 × typical, "wide" a range ≥ 8 semitones, "loudness bursts" ≥ 14 dB, "high pitch" ≥ 2
  semitones above the norm, and so on. Otherwise (the opposite, or describe finds nothing
  remarkable) it is contradicted. The measured states are read by running this module's own
  parser over describe's phrases, so no threshold is copied here.
* arousal words (:data:`AROUSAL_CLAIMS`) match the :func:`~emollama.describe.arousal_word` bands:
  "agitated"/"highly aroused" need its "highly aroused" band (≥ 0.5); "energetic"/"excited"/
  "tense"/"aroused" need arousal ≥ 0.15; "subdued"/"low-energy" need ≤ -0.15 (its "calm" or
  "subdued"); "calm"/"relaxed"/"quiet"/"soft" need < 0.15 (calm, subdued or even: the MERR tone
  word "calm" also covers even voices); "even" needs its "even" band. Only relative loudness is
  measured, so "quiet" is read as a low-arousal word.

**Quotes** (type ``quote``) match when, after lower-casing, straightening curly quotes and
dropping punctuation, they are a word-aligned substring of the clip's transcript / subtitle
(``words.text``; a trailing "..." of a shortened quote is ignored). Otherwise, and always when the
clip has no words, contradicted.

**Model readings** (type ``model``): "the facial-expression model reads the face as X (p)" matches
when X is the top label of ``expression_clip`` (``expression_mean`` for results before 1.2) and p
its score; otherwise contradicted.

**Presence** (type ``presence``), one claim per modality and direction per paragraph. Absence
phrases ("no face could be found", "there is no picture", "the clip has no audio track", "no
speech", "no words were available") match when that modality's status is not ``ok``; "no
picture / only sound / audio only" need face status ``absent`` and "no audio (track) / no sound"
need voice status ``absent``. A sentence that mentions the face (face, facial), the voice (voice,
vocal, intonation, prosody) or the words (says, said, subtitle, transcript, wording, words) without
an absence phrase for it claims that modality is present: matched when its status is ``ok``, else
contradicted.

**Numbers** in a claim match the measurement when they agree to the number's own precision: a
value written with one decimal must be within 0.05 of the measured one, an integer within 0.5
(plus :data:`NUMBER_SLACK`, 0.01, for the two-decimal rounding of stored clues).

Not checked: intensity adverbs (slightly, strongly), peak time stamps, the fused scores and the
final label, the text model's reading ("the wording suggests ..."), anything about the scene.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from emollama.describe import AU_PHRASES, arousal_word, describe_voice, voice_valence_sign
from emollama.evaluate.errors import EvaluationInputError
from emollama.merr.tone import TONE_WORDS, choose_tone
from emollama.perception.action_units import AU_DESCRIPTIONS
from emollama.schema import Clues

CueType = Literal["au", "voice", "quote", "model", "presence"]
Verdict = Literal["matched", "contradicted", "unverifiable"]
Status = Literal["grounded", "contradicted", "unverified", "uncited"]

CUE_TYPES: tuple[str, ...] = ("au", "voice", "quote", "model", "presence")
#: An AU counts as shown when it reaches this at the peak frame or in any frame (0-5 scale).
AU_PRESENT = 0.5
#: The level from which the describe module names an AU (``describe_aus``' threshold); a claim that
#: an AU is absent holds below it.
AU_MENTIONED = 1.0

#: Added to the half-unit tolerance of a written number: results store clues rounded to two
#: decimals, which may move a value by up to 0.005 from the one the text was written from.
NUMBER_SLACK = 0.01

_WS = re.compile(r"\s+")


@dataclass(frozen=True)
class Cue:
    """One checkable claim: ``key`` names what is claimed about (``AU12``, ``AU01|AU02``, ``rate``,
    ``quote``, ``face`` ...), ``claim`` what is said of it (``present``/``absent``, ``fast``, the
    quoted words ...), ``value`` a number stated with it (as written, so its precision is kept)."""

    type: str
    key: str
    claim: str
    text: str
    start: int
    value: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CueCheck:
    cue: Cue
    verdict: str
    reason: str

    def to_dict(self) -> dict:
        return {**self.cue.to_dict(), "verdict": self.verdict, "reason": self.reason}


@dataclass(frozen=True)
class GroundingReport:
    checks: list[CueCheck] = field(default_factory=list)

    def count(self, verdict: str) -> int:
        return sum(c.verdict == verdict for c in self.checks)

    @property
    def status(self) -> Status:
        if not self.checks:
            return "uncited"
        if self.count("contradicted"):
            return "contradicted"
        return "grounded" if self.count("matched") else "unverified"

    @property
    def grounded(self) -> bool:
        return self.status == "grounded"

    def to_dict(self) -> dict:
        return {"status": self.status, "matched": self.count("matched"),
                "contradicted": self.count("contradicted"), "unverifiable": self.count("unverifiable"),
                "checks": [c.to_dict() for c in self.checks]}


# ------------------------------------------------------------------------------------ the cue table
_BROWS = r"(?:eye)?brows?"
_CORNERS = r"(?:corners of (?:the|his|her|their) (?:mouth|lips)|(?:mouth|lip) corners)"
#: Everyday wordings of AU actions, beyond the describe module's phrases and the FACS names.
#: A key with ``|`` is matched by any of its AUs.
AU_PARAPHRASES: dict[str, tuple[str, ...]] = {
    "AU01": (rf"inner (?:ends of the )?{_BROWS} (?:are |is )?(?:rais\w*|lift\w*|go up)",
             rf"rais\w* (?:the )?inner {_BROWS}"),
    "AU02": (rf"outer (?:ends of the )?{_BROWS} (?:are |is )?(?:rais\w*|lift\w*|go up)",
             rf"rais\w* (?:the )?outer {_BROWS}"),
    "AU01|AU02": (rf"(?:raised|lifted|arched|rising) {_BROWS}",
                  rf"{_BROWS} (?:are |is )?(?:raised|rise|rises|rising|lift|lifts|lifted|lifting|go up|shoot up)",
                  r"brow rais\w*"),
    "AU04": (rf"(?:furrow\w*|knit\w*|lowered|drawn) {_BROWS}",
             rf"{_BROWS} (?:are |is )?(?:furrow\w*|knit\w*|lower\w*|pull\w* (?:down|together)|drawn (?:down|together))",
             r"\bfrown\w*"),
    "AU05": (r"(?:wide[- ]open|widened|wide) eyes", r"eyes (?:are )?(?:widen\w*|wide open|open wide)",
             r"upper (?:eye)?lids? (?:are |is )?(?:rais\w*|lift\w*|open\w*)"),
    "AU06": (r"cheeks? (?:are |is )?(?:rais\w*|lift\w*|push\w* up)", r"raised cheeks?", r"crow'?s[- ]feet"),
    "AU07": (r"(?:eye)?lids? (?:are |is )?tighten\w*", r"tighten\w* (?:eye)?lids", r"narrow\w* eyes",
             r"eyes (?:are )?narrow\w*", r"\bsquint\w*"),
    "AU09": (r"nose (?:is )?wrinkl\w*", r"wrinkl\w* (?:of )?(?:the |his |her |their )?nose"),
    "AU10": (r"upper lip (?:is )?(?:ris\w*|rais\w*|curl\w*|lift\w*)", r"rais\w* (?:the )?upper lip",
             r"\bsneer\w*"),
    "AU12": (r"\bsmil(?:e|es|ed|ing)\b",
             rf"{_CORNERS} (?:are )?(?:pull\w*|turn\w*|curl\w*|go|tilt\w*|lift\w*|rais\w*) up(?:wards?)?"),
    "AU14": (r"\bdimpl\w*",),
    "AU15": (rf"{_CORNERS} (?:are )?(?:turn\w*|pull\w*|droop\w*|go) down(?:wards?)?", r"down-?turned (?:mouth|lips)",
             rf"(?:droop\w*|down\w*) {_CORNERS}"),
    "AU17": (r"chin (?:is )?(?:push\w*|rais\w*)",),
    "AU20": (r"lips? (?:are |is )?stretch\w*", r"stretch\w* (?:the )?lips"),
    "AU23": (r"lips? (?:are |is )?(?:tighten\w*|press\w*)", r"(?:tightened|pressed|tight) lips"),
    "AU25": (r"lips (?:are )?(?:part|parts|parted|parting|apart)", r"parted lips"),
    "AU25|AU26": (r"mouth (?:is |falls |hangs |drops )?open\w*", r"open mouth"),
    "AU26": (r"jaw (?:is )?(?:drop\w*|open\w*|falls|lowers)", r"dropped jaw"),
    "AU45": (r"\bblink\w*",),
}


def _au_patterns() -> list[tuple[re.Pattern[str], str]]:
    table: list[tuple[str, str]] = []
    for au, phrase in AU_PHRASES.items():
        table.append((r"\b" + re.escape(phrase.removeprefix("the ")).replace(r"\ ", r"\s+"), au))
    for au, name in AU_DESCRIPTIONS.items():
        table.append((r"\b" + re.escape(name).replace(r"\ ", r"\s+") + r"s?\b", au))
    for key, patterns in AU_PARAPHRASES.items():
        table.extend((p, key) for p in patterns)
    return [(re.compile(p, re.IGNORECASE), key) for p, key in table]


_AU_PHRASE_PATTERNS = _au_patterns()
_AU_CODE = re.compile(r"\bAU\s?-?0*(\d{1,2})\b(?:\s*(?:\(|:|=|,|at|of|intensity)?\s*(?:intensity\s*)?"
                      r"(\d(?:\.\d+)?)(?![\d.]*\s*(?:s\b|%|semitone|dB|Hz|syllable)))?", re.IGNORECASE)
_REST = re.compile(r"resting state|\b(?:at|near) rest\b|no action units? (?:above|over|reach\w*)\s*\d",
                   re.IGNORECASE)
_NEG_BEFORE = re.compile(r"\b(?:no|not|without|never|nor|absence of|lack of|lacks?)\b(?:\W+\w+){0,2}\W*$",
                         re.IGNORECASE)
_NEG_AFTER = re.compile(r"^\W*(?:is|are|was|were)?\s*(?:absent|missing|not (?:present|active|shown|visible|seen))",
                        re.IGNORECASE)

_NUM = r"(\d+(?:\.\d+)?)"
_SOUNDS = r"(?:sounds?|sounding|sounded)\s+(?:\w+\s+)??"
#: (pattern, key, claim, group of the number or 0). Order matters only for overlapping spans: the
#: longest match at the leftmost position wins.
_VOICE_PATTERNS: list[tuple[str, str, str, int]] = [
    (rf"pitch (?:sits|is|lies) {_NUM} semitones? above", "pitch_level", "high", 1),
    (rf"pitch (?:sits|is|lies) {_NUM} semitones? below", "pitch_level", "low", 1),
    (r"\bhigh[- ]pitched|\b(?:high|raised|elevated) pitch\b|pitch (?:is|was|sounds|seems) (?:\w+ )?(?:high|raised)\b",
     "pitch_level", "high", 0),
    (r"\blow[- ]pitched|\b(?:low|lowered|deep) pitch\b|pitch (?:is|was|sounds|seems) (?:\w+ )?(?:low|deep)\b",
     "pitch_level", "low", 0),
    (rf"pitch range (?:is|was) (?:wide|large|broad)(?:, animated)?(?: \({_NUM} semitones?\))?", "pitch_range",
     "wide", 1),
    (rf"pitch range (?:is|was) (?:narrow|small)(?:, flat)?(?: \({_NUM} semitones?\))?", "pitch_range", "narrow", 1),
    (rf"pitch range (?:is|was) moderate(?: \({_NUM} semitones?\))?", "pitch_range", "moderate", 1),
    (r"\b(?:wide|animated|varied|lively) (?:pitch|intonation|melody)|\b(?:varied|animated|expressive) intonation",
     "pitch_range", "wide", 0),
    (r"\b(?:flat|monoton\w*|narrow) (?:pitch|intonation|melody|voice|delivery)|\bmonoton(?:e|ous)\b|"
     r"\bflat intonation", "pitch_range", "narrow", 0),
    (rf"loudness bursts {_NUM} dB", "loudness", "bursts", 1),
    (r"\bloudness bursts\b|\b(?:loud|shouting|shouted|shouts|yell\w*|raised voice|bursts of loudness)\b",
     "loudness", "bursts", 0),
    (r"loudness (?:stays|is|remains) (?:even|steady|stable|constant)|\b(?:even|steady|stable|constant) loudness",
     "loudness", "even", 0),
    (rf"speech is fast \(about {_NUM} syllables", "rate", "fast", 1),
    (rf"speech is slow \(about {_NUM} syllables", "rate", "slow", 1),
    (r"\b(?:fast|rapid|quick|hurried|rushed) (?:speech|pace|speaking|delivery|tempo|talking)|"
     r"\b(?:speech|speaking rate|pace|tempo|delivery) (?:is|was|seems) (?:\w+ )?(?:fast|rapid|quick|hurried)\b|"
     r"\b(?:speaks?|speaking|talks?|talking) (?:\w+ )?(?:quickly|rapidly|fast)\b", "rate", "fast", 0),
    (r"\b(?:slow|measured|unhurried|sluggish) (?:speech|pace|speaking|delivery|tempo|talking)|"
     r"\b(?:speech|speaking rate|pace|tempo|delivery) (?:is|was|seems) (?:\w+ )?slow\b|"
     r"\b(?:speaks?|speaking|talks?|talking) (?:\w+ )?slowly\b", "rate", "slow", 0),
    (rf"{_NUM} syllables? per second", "syllable_rate", "value", 1),
    (rf"pitch rises {_NUM} semitones? at the end", "final_pitch", "rise", 1),
    (rf"pitch falls {_NUM} semitones? at the end", "final_pitch", "fall", 1),
    (r"\brising (?:intonation|pitch) at the end|\bpitch rises at the end|\bquestion(?:-like| like)? (?:intonation|"
     r"contour)|\brising intonation", "final_pitch", "rise", 0),
    (r"\bfalling (?:intonation|pitch) at the end|\bpitch falls at the end|\bfalling intonation", "final_pitch",
     "fall", 0),
    (rf"\b(?:breathy|rough|hoarse|raspy|husky|creaky)\b(?:[^.;()]*?\(HNR {_NUM} dB\))?", "quality", "breathy", 1),
    (rf"\({_NUM} s of speech\)", "speech_duration", "value", 1),
    (r"\bhears it as (pleasant|unpleasant)(?: \(valence ([+-]?\d+(?:\.\d+)?)\))?", "valence", "", 2),
]
_VOICE_RE = [(re.compile(p, re.IGNORECASE), key, claim, g) for p, key, claim, g in _VOICE_PATTERNS]

#: Arousal words and the :func:`~emollama.describe.arousal_word` outputs each is consistent with.
_AGITATED = "highly aroused, agitated"
_SUBDUED = "subdued, low-energy"
AROUSAL_CLAIMS: dict[str, frozenset[str]] = {
    "agitated": frozenset({_AGITATED}), "highly aroused": frozenset({_AGITATED}),
    "energetic": frozenset({"energetic", _AGITATED}), "aroused": frozenset({"energetic", _AGITATED}),
    "excited": frozenset({"energetic", _AGITATED}), "tense": frozenset({"energetic", _AGITATED}),
    "intense": frozenset({"energetic", _AGITATED}),
    "calm": frozenset({"even", "calm", _SUBDUED}), "relaxed": frozenset({"even", "calm", _SUBDUED}),
    "quiet": frozenset({"even", "calm", _SUBDUED}), "soft": frozenset({"even", "calm", _SUBDUED}),
    "subdued": frozenset({"calm", _SUBDUED}), "low-energy": frozenset({"calm", _SUBDUED}),
    "even": frozenset({"even"}),
}
_AROUSAL_WORDS = "|".join(sorted((re.escape(w) for w in AROUSAL_CLAIMS), key=len, reverse=True))
_TONE_ONLY = [w for w in TONE_WORDS if w not in AROUSAL_CLAIMS]
_AROUSAL_RE = re.compile(
    rf"\b{_SOUNDS}({_AROUSAL_WORDS})\b|\b(?:voice|tone) (?:is|was|seems|sounds) (?:\w+ )?({_AROUSAL_WORDS})\b|"
    rf"\b({_AROUSAL_WORDS}) (?:voice|tone|delivery)\b|\bspeaks? (?:in an? )?({_AROUSAL_WORDS})\b", re.IGNORECASE)
_TONE_RE = re.compile(rf"\b(?:voice|tone|it) (?:sounds?|sounded|is|was) ({'|'.join(_TONE_ONLY)})\b|"
                      rf"\b({'|'.join(_TONE_ONLY)}) (?:tone|voice)\b", re.IGNORECASE)
_EXPRESSION_RE = re.compile(r"expression model reads (?:the face|it) as ([a-z]+)(?: \((\d+(?:\.\d+)?)\))?",
                            re.IGNORECASE)

#: (pattern, modality, the statuses it needs; None: anything but ok).
_ABSENT: list[tuple[re.Pattern[str], str, frozenset[str] | None]] = [
    (re.compile(p, re.IGNORECASE), modality, need) for p, modality, need in (
        (r"\bno picture\b|\bno video\b|\bonly (?:the )?sound\b|\baudio[- ]only\b|\bno (?:images?|visuals?)\b",
         "face", frozenset({"absent"})),
        (r"\bno (?:\w+ )?faces?\b|\bfaces? (?:could not|couldn't|cannot|can't|can not|was not|is not|wasn't|isn't) "
         r"(?:be )?(?:found|seen|detected|tracked|visible)|\bwithout (?:a |the )?(?:visible )?face\b|"
         r"visual channel is not used|\bfaces? (?:is|was) (?:invisible|hidden|out of (?:view|frame))",
         "face", None),
        (r"\bno (?:audio|sound)(?: track)?\b|\bwithout (?:audio|sound)\b", "voice", frozenset({"absent"})),
        (r"\bno speech\b|\bsilent\b|\bsilence\b|\bno (?:voice|vocal)\b|tone of voice is not used|"
         r"\b(?:voice|speech) (?:is|was) (?:not|in)(?:audible|available| heard| available)", "voice", None),
        (r"\bno words?\b|\bno (?:subtitles?|transcripts?|text)\b|\bnothing (?:is )?said\b|\bsays nothing\b|"
         r"\bwithout (?:any )?(?:spoken )?words\b", "words", None),
    )]
_PRESENT: dict[str, re.Pattern[str]] = {
    "face": re.compile(r"\b(?:face|faces|facial)\b", re.IGNORECASE),
    "voice": re.compile(r"\b(?:voice|vocal|intonation|prosody|prosodic)\b", re.IGNORECASE),
    "words": re.compile(r"(?<!other )\b(?:says|said|saying|subtitles?|transcripts?|transcribed|wording|words)\b",
                        re.IGNORECASE),
}
_QUOTE_RE = re.compile(r"\u201c([^\u201d\n]{1,400})\u201d|\u2018([^\u2019\n]{1,200})\u2019(?!\w)|"
                       r"(?<![\w\"])\"([^\"\n]{1,400})\"|(?<![\w'])'([^'\n]{1,200})'(?!\w)")
#: A sentence (or clause after ";") ends at punctuation followed by a space or the end, not at the
#: point inside "1.5".
_SENTENCE = re.compile(r"(?:[^.!?;]|[.!?;](?=\S))+(?:[.!?;]+|$)")


# ------------------------------------------------------------------------------------ reading cues
def _mask(text: str, spans: Iterable[tuple[int, int]]) -> str:
    chars = list(text)
    for a, b in spans:
        chars[a:b] = " " * (b - a)
    return "".join(chars)


def _sentences(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _SENTENCE.finditer(text) if m.group().strip()]


def _leftmost_longest(found: list[tuple[int, int, Any]]) -> list[tuple[int, int, Any]]:
    """Non-overlapping matches: at each position the longest wins."""
    out: list[tuple[int, int, Any]] = []
    end = -1
    for a, b, payload in sorted(found, key=lambda f: (f[0], -(f[1] - f[0]))):
        if a >= end:
            out.append((a, b, payload))
            end = b
    return out


def _negated(sentence: str, a: int, b: int) -> bool:
    return bool(_NEG_BEFORE.search(sentence[:a])) or bool(_NEG_AFTER.match(sentence[b:b + 40]))


def _au_cues(text: str) -> list[Cue]:
    cues: list[Cue] = []
    for start, end in _sentences(text):
        sentence = text[start:end]
        codes = [m for m in _AU_CODE.finditer(sentence) if 1 <= int(m.group(1)) <= 99]
        code_aus = {f"AU{int(m.group(1)):02d}" for m in codes}
        for m in codes:
            value = m.group(2) if m.group(2) is not None and float(m.group(2)) <= 5 else None
            claim = "absent" if _negated(sentence, m.start(), m.end()) else "present"
            cues.append(Cue("au", f"AU{int(m.group(1)):02d}", claim, m.group(0).strip(" (,:"), start + m.start(),
                            value))
        found = [(m.start(), m.end(), key) for pattern, key in _AU_PHRASE_PATTERNS for m in pattern.finditer(sentence)]
        for a, b, key in _leftmost_longest(found):
            if set(key.split("|")) & code_aus:
                continue  # "the nose wrinkles slightly (AU09 1.1)": the code says it, once
            claim = "absent" if _negated(sentence, a, b) else "present"
            cues.append(Cue("au", key, claim, sentence[a:b], start + a))
        for m in _REST.finditer(sentence):
            cues.append(Cue("au", "rest", "present", m.group(0), start + m.start()))
    return cues


def _voice_cues(text: str) -> list[Cue]:
    found = []
    for pattern, key, claim, group in _VOICE_RE:
        for m in pattern.finditer(text):
            value = m.group(group) if group else None
            found.append((m.start(), m.end(), (key, claim or m.group(1).lower(), value)))
    for m in _AROUSAL_RE.finditer(text):
        word = next(g for g in m.groups() if g).lower()
        found.append((m.start(), m.end(), ("arousal", word, None)))
    for m in _TONE_RE.finditer(text):
        word = next(g for g in m.groups() if g).lower()
        found.append((m.start(), m.end(), ("tone", word, None)))
    return [Cue("voice", key, claim, text[a:b], a, value) for a, b, (key, claim, value) in _leftmost_longest(found)]


def _model_cues(text: str) -> list[Cue]:
    return [Cue("model", "face_expression", m.group(1).lower(), m.group(0), m.start(), m.group(2))
            for m in _EXPRESSION_RE.finditer(text)]


def _presence_cues(text: str) -> list[Cue]:
    cues: list[Cue] = []
    for start, end in _sentences(text):
        sentence = text[start:end]
        absent_here: set[str] = set()
        for pattern, modality, need in _ABSENT:
            for m in pattern.finditer(sentence):
                absent_here.add(modality)
                claim = "absent" if need is None else f"absent:{'/'.join(sorted(need))}"
                cues.append(Cue("presence", modality, claim, m.group(0), start + m.start()))
        for modality, pattern in _PRESENT.items():
            m = pattern.search(sentence)
            if m and modality not in absent_here:
                cues.append(Cue("presence", modality, "present", m.group(0), start + m.start()))
    return cues


def _quote_cues(text: str) -> tuple[list[Cue], list[tuple[int, int]]]:
    cues, spans = [], []
    for m in _QUOTE_RE.finditer(text):
        inner = next(g for g in m.groups() if g is not None)
        spans.append((m.start(), m.end()))
        if _normalise(inner):
            cues.append(Cue("quote", "quote", inner, m.group(0), m.start()))
    return cues, spans


def cited_cues(text: str) -> list[Cue]:
    """The checkable claims of a paragraph, in reading order (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text or "").replace("\u2014", " - ")
    quotes, spans = _quote_cues(text)
    masked = _mask(text, spans)
    cues = quotes + _au_cues(masked) + _voice_cues(masked) + _model_cues(masked) + _presence_cues(masked)
    seen: set[tuple] = set()
    out: list[Cue] = []
    for cue in sorted(cues, key=lambda c: c.start):
        ident = (cue.type, cue.key, cue.claim) if cue.type == "presence" else (cue.type, cue.key, cue.claim,
                                                                                 cue.value)
        if ident not in seen:
            seen.add(ident)
            out.append(cue)
    return out


# ------------------------------------------------------------------------------------ checking
def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.translate(str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'}))
    text = re.sub(r"[^\w\s]", " ", text.replace("'", ""))
    return _WS.sub(" ", text).strip()


def _close(written: str, measured: float) -> bool:
    """Whether a number as written agrees with the measurement to the written precision."""
    decimals = len(written.split(".")[1]) if "." in written else 0
    return abs(float(written) - measured) <= 0.5 * 10 ** -decimals + NUMBER_SLACK


def _as_clues(clues: Clues | Mapping[str, Any]) -> Clues:
    return clues if isinstance(clues, Clues) else Clues.model_validate(dict(clues))


def _au_levels(clues: Clues) -> tuple[dict[str, float], dict[str, float]]:
    """(peak-frame value, highest value over all frames) per measured AU."""
    face = clues.face
    peak = dict(face.peak.au) if face.peak is not None else {}
    top = dict(peak)
    for row in face.au_intensity:
        for name, value in zip(face.au_names, row, strict=False):
            if value is not None:
                top[name] = max(top.get(name, 0.0), value)
    for name in face.au_names:
        top.setdefault(name, 0.0)
    return peak, top


def _check_au(cue: Cue, clues: Clues) -> tuple[str, str]:
    face = clues.face
    if face.status != "ok":
        return "contradicted", f"face status is {face.status}"
    peak, top = _au_levels(clues)
    if not top:
        return "unverifiable", "no AU measurements"
    if cue.key == "rest":
        active = sorted((k for k, v in peak.items() if k != "AU45" and v >= AU_MENTIONED), key=lambda k: -peak[k])
        if active:
            return "contradicted", "at the peak frame " + ", ".join(f"{k} {peak[k]:.1f}" for k in active[:3])
        return "matched", f"no AU reaches {AU_MENTIONED:g} at the peak frame"
    aus = [a for a in cue.key.split("|") if a in top]
    if not aus:
        return "unverifiable", f"{cue.key} is not among the measured AUs"
    shown = ", ".join(f"{a} peak {peak.get(a, 0.0):.2f} max {top[a]:.2f}" for a in aus)
    if cue.claim == "absent":
        if any(peak.get(a, 0.0) >= AU_MENTIONED for a in aus):
            return "contradicted", f"claimed absent but {shown}"
        return "matched", f"absent as claimed ({shown})"
    if not any(top[a] >= AU_PRESENT for a in aus):
        return "contradicted", f"never reaches {AU_PRESENT:g} ({shown})"
    if cue.value is not None:
        at_peak = peak.get(aus[0], 0.0)
        if not _close(cue.value, at_peak):
            return "contradicted", f"intensity {cue.value} cited, {at_peak:.2f} measured at the peak frame"
    return "matched", shown


#: voice cue key -> (where the measurement lives, its field).
_VOICE_MEASURES: dict[str, tuple[str, str]] = {
    "pitch_level": ("relative", "pitch_level_vs_norm_st"), "pitch_range": ("relative", "pitch_range_st"),
    "loudness": ("relative", "loudness_peak_vs_baseline_db"), "rate": ("relative", "rate_vs_typical"),
    "final_pitch": ("relative", "final_pitch_change_st"), "quality": ("prosody", "hnr_db"),
    "syllable_rate": ("prosody", "syllable_rate_per_s"), "speech_duration": ("voice", "speech_duration_s"),
    "arousal": ("voice", "arousal"), "tone": ("voice", "arousal"), "valence": ("voice", "head_valence"),
}
#: The number a graded claim states, when it is not the measure that grades it.
_VOICE_NUMBERS: dict[str, tuple[str, str]] = {"rate": ("prosody", "syllable_rate_per_s")}


def _measure(clues: Clues, where: str, name: str) -> float | None:
    voice = clues.voice
    source = {"relative": voice.relative, "prosody": voice.prosody}.get(where)
    return source.get(name) if source is not None else getattr(voice, name)


def _described_states(clues: Clues) -> dict[str, str]:
    """What the describe module says of this voice, read back with this module's own parser."""
    states: dict[str, str] = {}
    for phrase in describe_voice(clues.voice):
        for cue in _voice_cues(phrase):
            states.setdefault(cue.key, cue.claim)
    return states


def _check_voice(cue: Cue, clues: Clues) -> tuple[str, str]:
    voice = clues.voice
    if voice.status != "ok":
        return "contradicted", f"voice status is {voice.status}"
    where, name = _VOICE_MEASURES[cue.key]
    measured = _measure(clues, where, name)
    if measured is None:
        return "unverifiable", f"{name} was not measured"
    if cue.key == "arousal":
        word = arousal_word(measured)
        if word not in AROUSAL_CLAIMS[cue.claim]:
            return "contradicted", f"arousal {measured:+.2f} reads {word!r}"
        return "matched", f"arousal {measured:+.2f} reads {word!r}"
    if cue.key == "tone":
        word = choose_tone(voice, clues.words).word
        return ("matched" if word == cue.claim else "contradicted"), f"the tone rule gives {word!r}"
    if cue.key == "valence":
        sign = voice_valence_sign(measured)
        said = "pleasant" if sign > 0 else "unpleasant" if sign < 0 else "neither pleasant nor unpleasant"
        if said != cue.claim:
            return "contradicted", f"head valence {measured:+.2f} reads {said}"
        if cue.value is not None and not _close(cue.value, measured):
            return "contradicted", f"valence {cue.value} cited, {measured:+.2f} measured"
        return "matched", f"head valence {measured:+.2f}"
    if cue.claim != "value":
        state = _described_states(clues).get(cue.key, "unremarkable")
        if state != cue.claim:
            return "contradicted", f"{name} {measured:.2f}: the describe rules call it {state}"
    if cue.value is not None:
        number_where, number_name = _VOICE_NUMBERS.get(cue.key, (where, name))
        number = _measure(clues, number_where, number_name)
        if number is None:
            return "unverifiable", f"{number_name} was not measured"
        if cue.key in ("pitch_level", "final_pitch"):
            number = abs(number)
        if not _close(cue.value, number):
            return "contradicted", f"{cue.value} cited, {number_name} {number:.2f} measured"
    return "matched", f"{name} {measured:.2f}"


def _check_quote(cue: Cue, clues: Clues) -> tuple[str, str]:
    words = clues.words
    if words.status != "ok" or not words.text.strip():
        return "contradicted", f"no words were available (words status {words.status})"
    quote, said = _normalise(cue.claim), _normalise(words.text)
    if f" {quote} " in f" {said} ":
        return "matched", f"in the {words.source} text"
    return "contradicted", f"not in the {words.source} text"


def _check_model(cue: Cue, clues: Clues) -> tuple[str, str]:
    face = clues.face
    if face.status != "ok":
        return "contradicted", f"face status is {face.status}"
    read = face.expression_clip or face.expression_mean
    if not read:
        return "unverifiable", "no facial-expression scores"
    top = max(read, key=read.__getitem__)
    if cue.claim != top.lower():
        return "contradicted", f"the expression model's top label is {top} ({read[top]:.2f})"
    if cue.value is not None and not _close(cue.value, read[top]):
        return "contradicted", f"{cue.value} cited, {read[top]:.2f} measured"
    return "matched", f"top label {top} ({read[top]:.2f})"


def _check_presence(cue: Cue, clues: Clues) -> tuple[str, str]:
    status = getattr(clues, cue.key).status
    if cue.claim == "present":
        return ("matched" if status == "ok" else "contradicted"), f"{cue.key} status is {status}"
    need = cue.claim.partition(":")[2]
    ok = status in need.split("/") if need else status != "ok"
    return ("matched" if ok else "contradicted"), f"{cue.key} status is {status}"


_CHECKS = {"au": _check_au, "voice": _check_voice, "quote": _check_quote, "model": _check_model,
           "presence": _check_presence}


def check_grounding(text: str, clues: Clues | Mapping[str, Any]) -> GroundingReport:
    """Judge each cue of ``text`` against ``clues`` (an AnalysisResult's ``clues``, model or dict)."""
    model = _as_clues(clues)
    checks = []
    for cue in cited_cues(text):
        verdict, reason = _CHECKS[cue.type](cue, model)
        checks.append(CueCheck(cue, verdict, reason))
    return GroundingReport(checks)


# ------------------------------------------------------------------------------------ summaries
def _summarise(reports: list[GroundingReport]) -> dict[str, Any]:
    n = len(reports)
    statuses = Counter(r.status for r in reports)
    by_type = {t: {"matched": 0, "contradicted": 0, "unverifiable": 0} for t in CUE_TYPES}
    contradicted_keys: Counter[str] = Counter()
    for report in reports:
        for check in report.checks:
            by_type[check.cue.type][check.verdict] += 1
            if check.verdict == "contradicted":
                contradicted_keys[f"{check.cue.type}:{check.cue.key}"] += 1

    def share(status: str) -> float | None:
        return round(statuses[status] / n, 4) if n else None

    return {"n": n, "share_grounded": share("grounded"), "share_uncited": share("uncited"),
            "share_contradicted": share("contradicted"), "share_unverified": share("unverified"),
            "counts": {s: statuses[s] for s in ("grounded", "contradicted", "unverified", "uncited")},
            "by_type": by_type, "contradicted_keys": dict(contradicted_keys.most_common())}


def grounding_summary(pairs: Iterable[tuple[str, Clues | Mapping[str, Any]]]) -> dict[str, Any]:
    """Over many ``(text, clues)`` pairs: n, the shares grounded / uncited / contradicted /
    unverified, and per cue type how many cues matched, were contradicted or could not be checked."""
    return _summarise([check_grounding(text, clues) for text, clues in pairs])


# ------------------------------------------------------------------------------------ files
@dataclass(frozen=True)
class ResultText:
    name: str
    tier: str
    text: str
    clues: Clues


def _from_object(obj: Any, where: str, warnings: list[str]) -> ResultText | None:
    if not isinstance(obj, dict):
        warnings.append(f"{where}: not a JSON object; skipped")
        return None
    name = obj.get("name")
    if "result" in obj and "clues" not in obj:  # a batch line: name, status, ..., result
        if obj.get("status") != "ok" or not isinstance(obj.get("result"), dict):
            warnings.append(f"{where}: {name or 'a clip'} failed in analyze ({obj.get('error') or 'no result'}); "
                            "skipped")
            return None
        obj = obj["result"]
    if not isinstance(obj.get("clues"), dict) or not isinstance(obj.get("reasoning"), str):
        warnings.append(f"{where}: not an emollama analyze result (no clues / reasoning); skipped")
        return None
    try:
        clues = Clues.model_validate(obj["clues"])
    except ValidationError as exc:
        warnings.append(f"{where}: clues do not fit the result schema ({exc.error_count()} errors); skipped")
        return None
    if not name:
        media = obj.get("media") or {}
        name = Path(str(media.get("path", where))).stem
    return ResultText(str(name), str(obj.get("tier", "?")), obj["reasoning"], clues)


def _read_file(path: Path, warnings: list[str]) -> list[ResultText]:
    from emollama.validate import check_input_file

    check_input_file(path, what="results file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EvaluationInputError(f"results file {path}: cannot be read as UTF-8 text ({exc})") from exc
    if path.suffix.lower() == ".json":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EvaluationInputError(f"results file {path}: invalid JSON ({exc.msg}, line {exc.lineno})") from exc
        objs = obj if isinstance(obj, list) else [obj]
        found = [_from_object(o, f"{path.name}", warnings) for o in objs]
        return [r for r in found if r is not None]
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            warnings.append(f"{path.name}, line {n}: invalid JSON; skipped")
            continue
        found = _from_object(obj, f"{path.name}, line {n}", warnings)
        if found is not None:
            out.append(found)
    return out


def read_results(path: str | Path) -> tuple[list[ResultText], list[str]]:
    """AnalysisResults from a JSONL file (``analyze --manifest --out``), a JSON file (``--json``) or a
    folder of them; returns them with warnings for lines that were skipped."""
    p = Path(path).expanduser()
    warnings: list[str] = []
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in (".json", ".jsonl"))
        if not files:
            raise EvaluationInputError(f"results folder {p}: holds no .json or .jsonl files")
        results = [r for f in files for r in _read_file(f, warnings)]
    else:
        results = _read_file(p, warnings)
    if not results:
        raise EvaluationInputError(f"{p}: no emollama analyze results with clues and reasoning found"
                                   + (f" ({warnings[0]})" if warnings else ""))
    return results, warnings


def evaluate_grounding(path: str | Path) -> dict[str, Any]:
    """The grounding report of a results file or folder: overall, per tier, and per paragraph."""
    results, warnings = read_results(path)
    reports = [check_grounding(r.text, r.clues) for r in results]
    pairs = list(zip(results, reports, strict=True))
    tiers = sorted({r.tier for r in results})
    return {
        "schema": "emollama.grounding/1",
        "input": str(path),
        "summary": _summarise(reports),
        "by_tier": {t: _summarise([rep for r, rep in pairs if r.tier == t]) for t in tiers},
        "paragraphs": [{"name": r.name, "tier": r.tier, **rep.to_dict()} for r, rep in pairs],
        "warnings": warnings,
    }


__all__ = ["AU_PARAPHRASES", "AU_PRESENT", "Cue", "CueCheck", "GroundingReport", "check_grounding", "cited_cues",
           "evaluate_grounding", "grounding_summary", "read_results"]
