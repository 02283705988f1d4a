"""Fine-grained annotation: a reasoning paragraph that explains the clip's label from its clues.

Two writers share one interface (``record -> Fine``):

* :class:`TemplateFineWriter` (offline) composes the paragraph from the record's measured clues
  and marks it ``source="template"``. It argues for the *record's* label (ground truth or
  pseudo-label), which is why it is not the analyze pipeline's reasoning verbatim: that text
  argues for the clues tier's own prediction, which may differ from a ground-truth label. The
  analyze text is kept in the record as ``clues_reasoning``.
* :class:`LLMFineWriter` sends all clues and the label to any :class:`~emollama.llm.ChatBackend`
  (the MERR recipe: "sort out the correct clues and infer why the person feels {label}") and runs
  :func:`check_reasoning` on the answer. A backend failure becomes ``status="llm_error"`` with the
  message in ``reason`` and **no text**: errors are never stored as annotations, and a rerun
  retries exactly those clips.

Both build their input from the saved record alone, so the fine step can be redone later (another
model, a retry) without running perception again.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Protocol

from emollama.label_parsing import parse_label
from emollama.labels import CANONICAL, SYNONYMS, LabelSet
from emollama.llm.backend import ChatBackend, ChatMessage, LLMError
from emollama.merr.record import Fine, MerrRecord
from emollama.recognize.au_rules import supporting_aus

_ALL_LABELS = LabelSet("all", CANONICAL, "every canonical emotion word (for parsing free text)")

#: Words that show a paragraph talks about a measured clue (besides AU codes, the tone word and
#: the subtitle's own words, which are added per record).
CLUE_WORDS = frozenset({
    "brow", "brows", "eyebrow", "eyebrows", "eye", "eyes", "eyelid", "eyelids", "cheek", "cheeks", "mouth", "lip",
    "lips", "jaw", "chin", "nose", "smile", "smiling", "frown", "frowning", "dimple", "dimples", "face", "facial",
    "expression", "voice", "tone", "pitch", "loud", "loudness", "quiet", "speech", "speaks", "says", "said", "words",
    "subtitle", "sentence", "head", "gaze",
})

_COMMON = frozenset({"this", "that", "with", "have", "what", "your", "there", "they", "them", "much", "then",
                     "just", "will", "would", "could", "should", "about", "been", "were", "from", "very", "really"})
_REFUSAL = re.compile(r"^\s*(?:i'?m sorry|i am sorry|as an ai|i cannot|i can't|sorry,)", re.IGNORECASE)
_ERRORISH = re.compile(r"^\s*(?:error|exception|traceback)\b", re.IGNORECASE)


class FineWriter(Protocol):
    name: str

    def write(self, record: MerrRecord) -> Fine: ...


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def clue_vocabulary(record: MerrRecord) -> set[str]:
    """Words whose presence shows the paragraph uses at least one of *this* clip's clues."""
    vocab = set(CLUE_WORDS)
    vocab.update(a.au.lower() for a in record.coarse.active_aus)
    vocab.update(a.au.lower().replace("au0", "au") for a in record.coarse.active_aus)
    if record.coarse.audio_tone.word:
        vocab.add(record.coarse.audio_tone.word)
    # Quoting the subtitle counts as using it, but not through emotion words (the label itself
    # would then count as a clue) or common function words.
    vocab.update(w for w in _words(record.coarse.subtitle.text)
                 if len(w) > 3 and w not in SYNONYMS and w not in _COMMON)
    return vocab


def degeneracy(text: str) -> str | None:
    """Why ``text`` looks like a model stuck in a loop (``None`` when it does not).

    One word filling a quarter of a long text, a 4-word phrase said three times, or a sentence
    repeated: the usual failure shapes of small or badly prompted models. Shared by the fine and
    the vision-description filters.
    """
    words = _words(text)
    counts = Counter(w for w in words if len(w) > 3)
    if len(words) >= 40 and counts and counts.most_common(1)[0][1] >= 0.25 * len(words):
        return f"the word {counts.most_common(1)[0][0]!r} fills a quarter of the text"
    grams = Counter(tuple(words[i:i + 4]) for i in range(len(words) - 3))
    if grams and grams.most_common(1)[0][1] >= 3:
        return f"the phrase {' '.join(grams.most_common(1)[0][0])!r} repeats"
    sentences = [s.strip().lower() for s in re.split(r"[.!?]+", text) if len(s.split()) >= 4]
    if len(sentences) != len(set(sentences)):
        return "a sentence is repeated"
    return None


def check_reasoning(text: str | None, record: MerrRecord) -> tuple[bool, str, str | None]:
    """Filter an LLM paragraph: ``(ok, code, reason)``.

    Codes: ``empty``, ``error_text`` (an error message returned as a reply), ``refusal``, ``too_short``
    (< 12 words), ``degenerate`` (one word ≥ 25 % of a long text, or a 4-word phrase repeated ≥ 3
    times, or a repeated sentence), ``contradicts_label`` (the paragraph concludes another emotion),
    ``label_missing`` (it never names the label or a synonym), ``no_clue`` (it names none of the
    clip's clues).
    """
    label = record.label.value
    if text is None or not text.strip():
        return False, "empty", "the reply is empty"
    if _ERRORISH.match(text):
        return False, "error_text", "the reply is an error message, not an annotation"
    if _REFUSAL.match(text):
        return False, "refusal", "the model refused or apologised instead of answering"
    words = _words(text)
    if len(words) < 12:
        return False, "too_short", f"only {len(words)} words"
    why = degeneracy(text)
    if why is not None:
        return False, "degenerate", why
    parsed = parse_label(text, _ALL_LABELS)
    if parsed.status == "ok" and parsed.label != label:
        return False, "contradicts_label", f"the paragraph concludes {parsed.label!r}, the label is {label!r}"
    if label not in parsed.mentions:
        return False, "label_missing", f"the paragraph never names {label!r}"
    if not (set(words) & clue_vocabulary(record)):
        return False, "no_clue", "the paragraph mentions none of the clip's clues"
    return True, "ok", None


def clue_text(record: MerrRecord) -> str:
    """The clues as numbered plain-language lines: the LLM's input and the template's source."""
    c = record.coarse
    lines = []
    if c.peak is not None:
        aus = "; ".join(f"{a.phrase} ({a.au} {a.intensity:.1f})" for a in c.active_aus) or \
            "no action unit above 1.0: the face stays near rest"
        lines.append(f"Facial action units at the most expressive frame ({c.peak.time_s:.1f} s): {aus}.")
    else:
        lines.append("Face: not visible, no facial action units.")
    lines.append(f"Visual scene (measured): {c.visual_objective.get('text', '')}")
    vd = c.visual_description
    if vd is not None and vd.status == "ok" and vd.text:
        lines.append(f"Visual scene (described by a vision model from the most expressive frame): {vd.text}")
    if c.audio_tone.word:
        lines.append(f"Tone of voice: {c.audio_tone.word} ({c.audio_tone.evidence}).")
    else:
        lines.append(f"Tone of voice: not available ({c.audio_tone.evidence}).")
    if c.audio_description:
        lines.append(f"Voice details: {c.audio_description}.")
    if c.subtitle.text:
        origin = "subtitle" if c.subtitle.source == "subtitle" else f"speech recognition, {c.subtitle.language or '?'}"
        lines.append(f"Words spoken ({origin}): \u201c{c.subtitle.text}\u201d")
    else:
        lines.append("Words spoken: none available.")
    return "\n".join(f"{i}. {line}" for i, line in enumerate(lines, start=1))


class TemplateFineWriter:
    """Offline writer: a paragraph assembled from the measured clues, marked as template-written."""

    name = "template"

    def write(self, record: MerrRecord) -> Fine:
        label = record.label.value
        c = record.coarse
        parts: list[str] = []
        if c.peak is not None and c.active_aus:
            parts.append(f"At {c.peak.time_s:.1f} s, the most expressive moment, {c.visual_expression}.")
            backing = supporting_aus(c.peak.au, label, threshold=1.0)
            if backing:
                parts.append(f"{', '.join(backing)} {'is' if len(backing) == 1 else 'are'} part of how {label} "
                             "shows on a face.")
        elif c.peak is not None:
            parts.append("The face stays close to its resting state throughout the clip.")
        else:
            parts.append("The face cannot be seen, so the reading rests on the voice and the words.")
        if c.audio_tone.word:
            parts.append(f"The voice sounds {c.audio_tone.word} ({c.audio_tone.evidence}).")
        if c.subtitle.text:
            parts.append(f"The person says \u201c{c.subtitle.text}\u201d.")
        pred, lab = record.predicted_label, record.label
        if lab.source == "ground_truth" and pred is not None and pred != label:
            parts.append(f"The automatic clues lean towards {pred} ({record.prediction.get(pred, 0.0):.2f}), "
                         f"so the annotated {label} is carried mainly by the evidence above.")
        parts.append(f"Taken together, these clues indicate that the person feels {label}.")
        return Fine(status="ok", source="template", text=" ".join(parts), model=None, attempts=0)


SYSTEM_PROMPT = (
    "You analyse emotions in short video clips. You receive measurements of one speaker's face, voice and words, "
    "and the emotion the clip is annotated with. Use only the measurements given; never invent details about "
    "the scene or the person."
)


def build_messages(record: MerrRecord) -> list[ChatMessage]:
    """MERR's fine-grained request, in our own words: pick the supporting clues, explain the label."""
    label = record.label.value
    user = (f"Clues measured in the clip:\n{clue_text(record)}\n\n"
            f"The clip is annotated as: {label}.\n"
            f"Choose the clues above that support this emotion, set aside those that do not, and explain in one "
            f"paragraph of three to six sentences why the person feels {label}. Refer to the clues concretely "
            f"(for example the facial movements, the tone of voice, or the words). End with the sentence "
            f"\"Therefore the emotion is {label}.\"")
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


class LLMFineWriter:
    """Fine annotation through any chat backend, filtered by :func:`check_reasoning`."""

    def __init__(self, backend: ChatBackend, *, temperature: float = 0.2, max_tokens: int = 400) -> None:
        self.backend = backend
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.name = f"llm:{backend.model}"

    def write(self, record: MerrRecord) -> Fine:
        attempts = record.fine.attempts + 1 if record.fine.status == "llm_error" else 1
        try:
            reply = self.backend.complete(build_messages(record), temperature=self.temperature,
                                          max_tokens=self.max_tokens)
        except LLMError as exc:
            return Fine(status="llm_error", source="llm", text=None, model=self.backend.model, reason=str(exc),
                        attempts=attempts)
        text = reply.text.strip()
        ok, code, reason = check_reasoning(text, record)
        if not ok:
            return Fine(status="filtered", source="llm", text=None, model=reply.model, reason=f"{code}: {reason}",
                        attempts=attempts)
        return Fine(status="ok", source="llm", text=text, model=reply.model, attempts=attempts)
