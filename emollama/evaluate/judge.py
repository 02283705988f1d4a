"""LLM-judged EMER scores (clue overlap, label overlap) and LLM emotion-word extraction.

Protocol (EMER v1 / AffectGPT in spirit, prompts written for emollama): temperature 0, the judge is
asked to put the integer score *first*, and the first integer of the reply is taken. A reply with
no integer or one outside 1–10 is ``unparseable``/``out_of_range``; a transport failure is
``error``. None of those becomes a number: they are counted, listed, and left out of the mean.

Every call is recorded as a :class:`JudgeCall` (request hash, server-reported model name, raw reply,
whether it came from the cache) so a run can be audited and re-scored from the cache offline.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from emollama.llm import ChatBackend, ChatMessage, LLMError, request_key

JudgeStatus = Literal["ok", "unparseable", "out_of_range", "error"]

SCORE_MIN, SCORE_MAX = 1, 10
TEMPERATURE = 0.0
MAX_TOKENS = 256
PROMPT_VERSION = "emollama-judge/1"

SYSTEM_PROMPT = (
    "You compare written accounts of a person's emotional state in a short video clip. "
    "You are strict, consistent, and you follow the requested reply format exactly."
)

CLUE_OVERLAP_PROMPT = """\
Two accounts of the same video clip follow. Each says which emotion the main speaker shows and \
which cues support it: facial expression, gestures, voice (tone, loudness, pace), the words \
spoken, and the situation.

Reference account:
<<<
{reference}
>>>

Candidate account:
<<<
{candidate}
>>>

Silently work out (1) what the reference concludes about the speaker's emotional state and which \
cues it relies on, and (2) the same for the candidate. Then rate how far the candidate's cues and \
conclusion agree with the reference's: 1 means nothing in common, 10 means the same cues and the \
same emotional state. Cues the reference does not mention neither add nor subtract unless they \
contradict it.

Reply on one line: the integer score first, then a semicolon, then one short sentence of \
justification. Example: "6; both see anger in the raised voice, but the candidate misses the \
sarcasm in the words.\""""

LABEL_EXTRACT_PROMPT = """\
Read this account of a person in a video clip and name the emotional state(s) the person most \
likely feels. When the account says the person looks one way but feels another (for instance, \
smiling while actually being nervous), name what the person feels.

Account:
<<<
{text}
>>>

Reply with the emotion words only, lower case, separated by commas, most important first. \
Reply "none" if the account states no emotion."""

LABEL_OVERLAP_PROMPT = """\
Two lists of emotion words describe the same person in the same clip.

Reference emotions: {reference}
Candidate emotions: {candidate}

Rate how well the candidate emotions match the reference emotions, counting synonyms and close \
variants (glad / happy, anxious / worried) as matches: 1 means entirely different or opposite \
emotions, 10 means the same emotions.

Reply on one line: the integer score first, then a semicolon, then a short reason."""

_INTEGER = re.compile(r"(?<![\d.])-?\d+")


def first_integer(text: str) -> int | None:
    """The first integer written in ``text`` ("7; agrees…" → 7, "Score: 8/10" → 8), or ``None``."""
    match = _INTEGER.search(text or "")
    return int(match.group(0)) if match else None


def parse_score(text: str) -> tuple[int | None, JudgeStatus]:
    """Score and status of a judge reply; only an integer in 1–10 is a score."""
    value = first_integer(text)
    if value is None:
        return None, "unparseable"
    if not SCORE_MIN <= value <= SCORE_MAX:
        return None, "out_of_range"
    return value, "ok"


def parse_word_list(text: str) -> tuple[str, ...]:
    """Emotion words from an extraction reply ("anxious, sad" / "- anxious\\n- sad" / "none")."""
    cleaned = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", text or "", flags=re.MULTILINE)
    words = []
    for part in re.split(r"[,;\n/、，；]|\band\b", cleaned):
        word = part.strip().strip(".:\"'`[]()").strip().lower()
        if word and word not in ("none", "n/a", "无") and len(word) <= 40 and word not in words:
            words.append(word)
    return tuple(words)


@dataclass(frozen=True)
class JudgeCall:
    """One request to the judge and what came back (or why nothing did)."""

    name: str
    metric: str  # clue_overlap | label_overlap | extract
    step: str  # score | extract_reference | extract_candidate
    request_key: str
    requested_model: str
    model: str | None
    reply: str | None
    cached: bool
    status: str
    error: str | None = None
    parsed: object = None


@dataclass(frozen=True)
class JudgeOutcome:
    """A per-sample judged score; ``score`` is set only when ``status == "ok"``."""

    name: str
    metric: str
    score: int | None
    status: JudgeStatus
    calls: tuple[JudgeCall, ...] = field(default=())
    detail: str | None = None


def _messages(prompt: str) -> list[ChatMessage]:
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}]


class Judge:
    """Runs judge prompts over a backend (wrap it in :class:`~emollama.llm.CachedBackend`)."""

    def __init__(self, backend: ChatBackend, *, max_workers: int = 4) -> None:
        self.backend = backend
        self.max_workers = max(1, max_workers)

    def _ask(self, name: str, metric: str, step: str, prompt: str) -> tuple[JudgeCall, str | None]:
        messages = _messages(prompt)
        key = request_key(self.backend.model, messages, TEMPERATURE, MAX_TOKENS)
        try:
            reply = self.backend.complete(messages, temperature=TEMPERATURE, max_tokens=MAX_TOKENS)
        except LLMError as exc:
            call = JudgeCall(
                name, metric, step, key, self.backend.model, None, None, False, "error", str(exc)
            )
            return call, None
        call = JudgeCall(
            name, metric, step, key, self.backend.model, reply.model, reply.text, reply.cached, "ok"
        )
        return call, reply.text

    def _score(self, name: str, metric: str, prompt: str, prior: Sequence[JudgeCall] = ()) -> JudgeOutcome:
        call, text = self._ask(name, metric, "score", prompt)
        if text is None:
            return JudgeOutcome(name, metric, None, "error", (*prior, call), call.error)
        score, status = parse_score(text)
        call = JudgeCall(**{**call.__dict__, "status": status, "parsed": score})
        detail = None if status == "ok" else f"reply {text[:80]!r} has no score in {SCORE_MIN}–{SCORE_MAX}"
        return JudgeOutcome(name, metric, score, status, (*prior, call), detail)

    def clue_overlap(self, name: str, reference: str, candidate: str) -> JudgeOutcome:
        prompt = CLUE_OVERLAP_PROMPT.format(reference=reference.strip(), candidate=candidate.strip())
        return self._score(name, "clue_overlap", prompt)

    def extract(
        self, name: str, text: str, step: str, metric: str = "extract"
    ) -> tuple[JudgeCall, tuple[str, ...] | None]:
        """Emotion words of one text by the judge; ``None`` when the call failed."""
        call, reply = self._ask(name, metric, step, LABEL_EXTRACT_PROMPT.format(text=text.strip()))
        if reply is None:
            return call, None
        words = parse_word_list(reply)
        return JudgeCall(**{**call.__dict__, "parsed": list(words)}), words

    def label_overlap(self, name: str, reference: str, candidate: str) -> JudgeOutcome:
        """Two extraction calls, then one scoring call on the two word lists."""
        ref_call, ref_words = self.extract(name, reference, "extract_reference", "label_overlap")
        cand_call, cand_words = self.extract(name, candidate, "extract_candidate", "label_overlap")
        calls = (ref_call, cand_call)
        if ref_words is None or cand_words is None:
            failed = ref_call if ref_words is None else cand_call
            return JudgeOutcome(name, "label_overlap", None, "error", calls, failed.error)
        prompt = LABEL_OVERLAP_PROMPT.format(
            reference=", ".join(ref_words) or "none", candidate=", ".join(cand_words) or "none"
        )
        return self._score(name, "label_overlap", prompt, calls)

    def map(
        self, func: Callable[..., JudgeOutcome], jobs: Sequence[tuple[str, str, str]]
    ) -> list[JudgeOutcome]:
        """Run ``func(name, reference, candidate)`` over jobs with the worker limit, in job order."""
        if self.max_workers == 1 or len(jobs) <= 1:
            return [func(*job) for job in jobs]
        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            return list(pool.map(lambda job: func(*job), jobs))
