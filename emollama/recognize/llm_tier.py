"""The ``llm`` tier: the clues tier's perception pass, then a chat LLM names the label and says why.

The measured clues (AUs at the peak frame, the facial-expression model, prosody and the voice
model, the transcript and the text model) are rendered as a few short English lines
(:func:`describe_clues`) and sent to any :class:`~emollama.llm.backend.ChatBackend` with the label
list spelled out and a fixed answer form, ``Emotion: <label>. Reason: <one sentence>.``
(:func:`build_messages`). The prompt is kept short so that even the packaged SmolLM2-135M-Instruct
has a fair chance; a larger model reads it just as well.

The label is read strictly (:func:`read_answer`, on top of
:func:`~emollama.label_parsing.parse_label`): the ``Emotion:`` field when the reply has one, else
the whole reply. An answer that names no label of the set, or several in its ``Emotion:`` field,
gives ``label=None``, uniform scores and a warning — never a silent "neutral". Scores are one-hot
on the parsed label (an LLM reply is no calibrated distribution); the per-modality scores the
prompt quoted are kept in ``modality_scores``. A backend failure (:class:`~emollama.llm.backend.LLMError`)
is raised, not turned into a result, so a batch records the clip as failed and a rerun retries it.

Which LLM (:func:`load_llm_backend`): no target → the packaged SmolLM2-135M-Instruct
(:func:`emollama.packaged.smollm2_dir`, a cached Hugging Face folder) on
:class:`~emollama.llm.transformers_local.TransformersBackend`; an ``http(s)://`` URL → an
OpenAI-compatible server (needs a model name); a ``.gguf`` file → llama-cpp-python when it is
installed, otherwise the file is converted once with :func:`emollama.packaged.gguf_to_hf` and run
on transformers; a folder → transformers.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from emollama.label_parsing import ParsedLabel, parse_label
from emollama.labels import LabelSet, get_label_set
from emollama.llm.backend import ChatBackend, ChatMessage
from emollama.schema import AnalysisResult, Clues, ModalityScores

if TYPE_CHECKING:  # the CLI imports this module to check --llm before the perception stack loads
    from emollama.perception.pipeline import Perception

#: The packaged model's name in results (its cache folder is named after the GGUF and a hash).
PACKAGED_NAME = "SmolLM2-135M-Instruct (packaged)"
#: The answer is one label and one sentence; more tokens only give a small model room to ramble.
MAX_TOKENS = 80
_QUOTE_CHARS = 200

SYSTEM_PROMPT = "You read measurements of a person in a video clip and name the emotion they show."


def _read(scores: dict[str, float], top: int = 2) -> str:
    """``happy 71%, neutral 20%``: a model's strongest labels, as percentages."""
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])[:top]
    return ", ".join(f"{y} {p:.0%}" for y, p in ranked if p > 0)


def describe_clues(clues: Clues, modality_scores: list[ModalityScores]) -> str:
    """The clues as three short lines (face, voice, words) for an LLM prompt.

    Phrases come from :mod:`emollama.describe` (the same words as the clues tier's reasoning and
    the MERR descriptions); each modality's model reading is its scores on the requested label set
    (``modality_scores``, from :func:`~emollama.recognize.fusion.fuse`). A modality the clues tier
    left out (zero weight, or no scores) is given without a model reading; a missing one says so.
    """
    from emollama.describe import arousal_word, describe_aus, describe_voice

    used = {m.modality: m for m in modality_scores if m.weight > 0}
    face, voice, words = clues.face, clues.voice, clues.words

    if face.status == "ok" and face.peak is not None and ("face" in used or "action_units" in used):
        aus = describe_aus(face.peak.au)
        parts = [f"at {face.peak.time_s:.1f} s, " + ("; ".join(aus) if aus else "the face stays near rest")]
        if "face" in used:
            parts.append(f"the expression model reads {_read(used['face'].scores)}")
        if "action_units" in used:
            parts.append(f"the muscle pattern fits {_read(used['action_units'].scores, 1)}")
        face_line = "; ".join(parts)
    elif face.status == "ok":
        face_line = "not reliably seen"
    elif face.status == "absent":
        face_line = "no picture"
    else:
        face_line = "not visible"

    if voice.status == "ok":
        parts = []
        if arousal := arousal_word(voice.arousal):
            parts.append(f"sounds {arousal}")
        parts.extend(describe_voice(voice)[:3])
        if "voice" in used:
            parts.append(f"the voice model reads {_read(used['voice'].scores)}")
        voice_line = "; ".join(parts) or "speech, nothing notable measured"
    elif voice.status == "absent":
        voice_line = "no audio"
    else:
        voice_line = "no speech"

    if words.status == "ok" and words.text:
        text = words.text.strip()
        quote = text if len(text) <= _QUOTE_CHARS else text[: _QUOTE_CHARS - 3] + "..."
        words_line = f"\u201c{quote}\u201d"
        if "words" in used:
            words_line += f"; the text model reads {_read(used['words'].scores)}"
    else:
        words_line = "none"
    return f"Face: {face_line}.\nVoice: {voice_line}.\nWords: {words_line}."


def build_messages(description: str, labels: LabelSet) -> list[ChatMessage]:
    """The request: the clue lines, the label list, and the fixed answer form."""
    user = (f"Measurements:\n{description}\n\n"
            f"Which emotion does the person show? Choose exactly one of: {', '.join(labels.labels)}.\n"
            "Write \"Emotion:\" and the emotion, then \"Reason:\" and one short sentence.")
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


_FIELD = re.compile(r"emotion\s*[:=]\s*(.*?)(?=\breason\b|[\n.]|$)", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Answer:
    """One parsed reply: ``label`` is set only when ``status == "ok"``; ``detail`` says why not."""

    label: str | None
    status: str  # ok | unparseable | not_in_set | ambiguous
    detail: str


def read_answer(text: str, labels: LabelSet) -> Answer:
    """The label a reply asserts, read strictly.

    With an ``Emotion:`` field (the last one, if the model repeats the form), only that field
    counts; without one, the whole reply. Either way the text goes through
    :func:`~emollama.label_parsing.parse_label` (negated and questioned mentions do not count),
    and exactly one label of the set must be asserted: "happy or sad", "a mix of neutral and
    happy" or the label list copied back are ambiguous, an unfilled placeholder names none.
    """
    fields = _FIELD.findall(text or "")
    where = "its Emotion field" if fields else "the reply (no Emotion field)"
    parsed = parse_label(fields[-1] if fields else text or "", labels)
    distinct = sorted({m for m in parsed.mentions if m in labels})
    if len(distinct) > 1:
        return Answer(None, "ambiguous", f"{where} names {' and '.join(distinct)}")
    return _answer(parsed, where)


def _answer(parsed: ParsedLabel, where: str) -> Answer:
    if parsed.status == "ok":
        return Answer(parsed.label, "ok", "")
    if parsed.status == "not_in_set":
        return Answer(None, "not_in_set", f"{where} names {', '.join(dict.fromkeys(parsed.mentions))}, "
                                          "outside the label set")
    return Answer(None, "unparseable", f"{where} names no emotion")


class LLMRecognizer:
    """Perception → clue lines → one chat request → label (strictly parsed) and the reply as reasoning."""

    tier = "llm"
    stage = "llm"

    def __init__(self, backend: ChatBackend, *, name: str | None = None, max_tokens: int = MAX_TOKENS,
                 temperature: float = 0.0, load_s: float = 0.0) -> None:
        self.backend = backend
        self.name = name or backend.model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.load_s = load_s

    def recognize(self, p: Perception, label_set: str) -> AnalysisResult:
        from emollama.recognize.clues import clues_evidence, face_warnings
        from emollama.recognize.fusion import fuse
        from emollama.recognize.result import build_result, uniform_scores

        labels = get_label_set(label_set)
        warnings = list(p.warnings) + face_warnings(p)
        evidence = clues_evidence(p)
        per_modality = fuse(evidence, labels)[1] if evidence else []
        messages = build_messages(describe_clues(p.clues, per_modality), labels)
        t = time.perf_counter()
        reply = self.backend.complete(messages, temperature=self.temperature, max_tokens=self.max_tokens)
        p.timings["llm_s"] = time.perf_counter() - t
        answer = read_answer(reply.text, labels)
        if answer.label is None:
            scores = uniform_scores(labels)
            warnings.append(f"the LLM's answer gives no label of {labels.name} ({answer.status}: {answer.detail})")
        else:
            scores = {y: float(y == answer.label) for y in labels.labels}
        if not evidence:
            warnings.append("no usable face, voice or words: the LLM answered without measured clues")
        model = self.name if reply.model in ("", self.backend.model) else f"{self.name} ({reply.model})"
        return build_result(p, tier=self.tier, labels=labels, label=answer.label, scores=scores,
                            reasoning=reply.text.strip(), models={**p.models, "llm": model}, warnings=warnings,
                            modality_scores=per_modality)


def check_llm_target(target: str | None, model: str | None = None) -> None:
    """Refuse a target :func:`load_llm_backend` could not use, in one line and before anything loads."""
    from emollama.errors import InputError

    if target is None:
        if model is not None:
            raise InputError("--llm-model names the model of an http(s):// --llm server; give --llm URL too")
        return
    if target.startswith(("http://", "https://")):
        if not model:
            raise InputError(f"--llm {target}: an http(s):// server needs the model name it serves (--llm-model)")
        return
    if model is not None:
        raise InputError("--llm-model is for an http(s):// --llm server; a local model is named by its path")
    path = Path(target).expanduser()
    if target.lower().endswith(".gguf"):
        if not path.is_file():
            raise InputError(f"--llm {target!r}: no such .gguf file")
    elif not path.is_dir():
        raise InputError(f"--llm {target!r}: not an http(s):// URL, an existing .gguf file or a model folder")
    elif not (path / "config.json").is_file():
        raise InputError(f"--llm {target!r}: not a Hugging Face model folder (no config.json)")


def load_llm_backend(target: str | None = None, *, model: str | None = None, api_key: str | None = None,
                     timeout_s: float = 60.0) -> tuple[ChatBackend, str]:
    """The chat backend ``target`` names, and the name results give it.

    ``None``: the packaged SmolLM2-135M-Instruct (a cached HF folder, converted from its GGUF on
    the first call). ``http(s)://…``: an OpenAI-compatible server (``model`` is required). A
    ``.gguf`` file: llama-cpp-python when importable, otherwise converted once into a cached HF
    folder with :func:`~emollama.packaged.gguf_to_hf` and run on transformers (no extra install).
    A folder: a Hugging Face model folder on transformers. Raises one-line
    :class:`~emollama.errors.EmollamaError` subclasses for a bad target.
    """
    from emollama.llm.factory import LLMSpec, make_backend
    from emollama.llm.transformers_local import TransformersBackend

    check_llm_target(target, model)
    if target is None:
        from emollama.packaged import smollm2_dir

        return TransformersBackend(smollm2_dir()), PACKAGED_NAME
    spec = LLMSpec(target, model, api_key, timeout_s=timeout_s)
    if spec.kind == "http":
        return make_backend(spec), f"{model} at {target}"
    path = Path(target).expanduser()
    if spec.kind == "gguf":
        try:
            import llama_cpp  # type: ignore[import-not-found]  # noqa: F401
        except ImportError:
            from emollama.packaged import gguf_to_hf

            return TransformersBackend(gguf_to_hf(path)), path.name
        return make_backend(LLMSpec(str(path))), path.name
    return TransformersBackend(path), path.name


def load_llm_recognizer(target: str | None = None, *, model: str | None = None, api_key: str | None = None,
                        max_tokens: int = MAX_TOKENS) -> LLMRecognizer:
    """:func:`load_llm_backend` wrapped as the ``llm`` tier's recogniser (its load time kept in ``load_s``)."""
    t = time.perf_counter()
    backend, name = load_llm_backend(target, model=model, api_key=api_key)
    return LLMRecognizer(backend, name=name, max_tokens=max_tokens, load_s=time.perf_counter() - t)
