"""Visual objective description by a vision-capable LLM: the peak frame, shown to the model.

MERR described each clip's scene with MiniGPT-v2. Offline, :mod:`emollama.merr.visual` can only say
what is measured (framing, head direction, faces, lighting). When the user opts in with
``--llm-vision`` and the ``--llm`` server runs a model that reads images, the peak frame is sent as
an inline JPEG and the model's description is stored *beside* the measured one (never replacing
it), marked with its source and the model the server named.

The opt-in is explicit because an OpenAI-compatible endpoint gives no reliable way to ask whether
its model reads images: some reject image parts (an HTTP error, recorded as ``llm_error`` and
retried), others silently drop them and let a text model invent a scene. The reply filter catches
the honest version of the latter ("I cannot see any image"); the prompt tells the model to say so.

The model is not told the label or any clue: the description is meant to be independent evidence
that the fine step can weigh, not an echo of the annotation.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
from PIL import Image

from emollama.llm.backend import ChatBackend, ChatMessage, LLMError, image_part, text_part
from emollama.merr.fine import _ERRORISH, _REFUSAL, _words, degeneracy
from emollama.merr.record import VisualDescription

#: Long side of the JPEG sent. Vision encoders work at 336-768 px, so more only costs upload time
#: and tokens on servers that tile large images.
MAX_SIDE = 768
JPEG_QUALITY = 85
MIN_WORDS = 6

VISION_SYSTEM = (
    "You write factual descriptions of single video frames for a dataset about how people express emotion. "
    "Describe only what is visible in the picture you are given."
)
VISION_PROMPT = (
    "This frame is the moment of strongest facial movement in a short clip of someone speaking. In two to four "
    "plain sentences, describe what can be seen: the person's apparent age group, hair and clothing; their "
    "posture, where the head is turned and where they look; the setting, notable objects and the lighting. "
    "Do not name the person, and do not guess what they feel: their emotion is judged separately. "
    "If no picture reached you, answer only: NO IMAGE."
)

#: Replies that admit the model did not get (or cannot read) the picture. Kept narrow on purpose:
#: a real description may well say "the person is not looking at the camera in this image".
_NO_IMAGE = re.compile(
    r"^\W*no image\W*$"
    r"|\b(?:do not|don't|cannot|can't|can ?not|am unable to|i'm unable to|unable to|not able to)\s+"
    r"(?:see|view|access|open|process|display|analy[sz]e|look at)\s+(?:the |an |any |this |your )?"
    r"(?:image|picture|photo|frame|attachment)s?\b"
    r"|\bno (?:image|picture|photo|attachment) (?:was |is |has been )?(?:attached|provided|included|shared|given)"
    r"|\b(?:as |i am |i'm )an? (?:text[- ]based|text[- ]only|language) (?:model|ai|assistant)",
    re.IGNORECASE,
)


def encode_jpeg(frame: np.ndarray, max_side: int = MAX_SIDE, quality: int = JPEG_QUALITY) -> tuple[bytes, int, int]:
    """``(jpeg, width, height)`` of an RGB frame, shrunk so its long side is at most ``max_side``.

    Deterministic for a given frame (same bytes every run), which keeps the content-hash cache
    effective across reruns.
    """
    image = Image.fromarray(np.ascontiguousarray(frame[..., :3]).astype(np.uint8), "RGB")
    w, h = image.size
    if max(w, h) > max_side:
        scale = max_side / max(w, h)
        image = image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality, optimize=True)
    return buf.getvalue(), image.size[0], image.size[1]


def build_vision_messages(jpeg: bytes) -> list[ChatMessage]:
    return [{"role": "system", "content": VISION_SYSTEM},
            {"role": "user", "content": [text_part(VISION_PROMPT), image_part(jpeg, "image/jpeg")]}]


def clean_description(text: str, finish_reason: str | None = None) -> str:
    """One line of prose: whitespace and list/markdown markers collapsed; a reply cut off by the
    token limit is trimmed back to its last full sentence (a half sentence in a caption reads as a bug)."""
    text = re.sub(r"(?m)^\s*(?:[-*•]|\d+[.)])\s+", "", text)
    text = re.sub(r"[*_#`]+", "", text)
    text = " ".join(text.split())
    if finish_reason == "length":
        end = max(text.rfind(". "), text.rfind("! "), text.rfind("? "))
        if text.endswith((".", "!", "?")):
            end = len(text) - 1
        if end > 0:
            text = text[:end + 1]
    return text


def check_description(text: str | None) -> tuple[bool, str, str | None]:
    """Filter a vision reply: ``(ok, code, reason)``.

    Codes: ``empty``, ``error_text``, ``refusal``, ``no_image`` (the model says it got no picture),
    ``too_short`` (fewer than :data:`MIN_WORDS` words), ``degenerate`` (repetition loops).
    """
    if text is None or not text.strip():
        return False, "empty", "the reply is empty"
    if _ERRORISH.match(text):
        return False, "error_text", "the reply is an error message, not a description"
    if _NO_IMAGE.search(text):
        return False, "no_image", "the model says it received or can read no image (endpoint without vision?)"
    if _REFUSAL.match(text):
        return False, "refusal", "the model refused or apologised instead of describing"
    words = _words(text)
    if len(words) < MIN_WORDS:
        return False, "too_short", f"only {len(words)} words"
    why = degeneracy(text)
    if why is not None:
        return False, "degenerate", why
    return True, "ok", None


class VisionDescriber:
    """Describe one frame through a chat backend that accepts images; failures become records, not text."""

    def __init__(self, backend: ChatBackend, *, max_side: int = MAX_SIDE, temperature: float = 0.0,
                 max_tokens: int = 200) -> None:
        self.backend = backend
        self.max_side = max_side
        self.temperature = temperature
        self.max_tokens = max_tokens

    def describe(self, frame: np.ndarray | None, frame_time_s: float | None, *,
                 previous: VisualDescription | None = None) -> VisualDescription:
        attempts = previous.attempts + 1 if previous is not None and previous.status == "llm_error" else 1
        if frame is None:
            return VisualDescription(status="skipped", source="none", reason="the clip has no picture to describe")
        jpeg, w, h = encode_jpeg(frame, self.max_side)
        sent = {"frame_time_s": frame_time_s, "image_size": [w, h], "image_bytes": len(jpeg), "attempts": attempts}
        try:
            reply = self.backend.complete(build_vision_messages(jpeg), temperature=self.temperature,
                                          max_tokens=self.max_tokens)
        except LLMError as exc:
            return VisualDescription(status="llm_error", source="llm", model=self.backend.model, reason=str(exc),
                                     **sent)
        finish = None
        choices = reply.raw.get("choices") if isinstance(reply.raw, dict) else None
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            finish = choices[0].get("finish_reason")
        text = clean_description(reply.text, finish)
        ok, code, reason = check_description(text)
        if not ok:
            return VisualDescription(status="filtered", source="llm", model=reply.model, reason=f"{code}: {reason}",
                                     **sent)
        return VisualDescription(status="ok", source="llm", model=reply.model, text=text, **sent)


def frame_at(path: str | Path, time_s: float | None, fps: float) -> tuple[np.ndarray | None, float | None]:
    """Decode the sampled frame nearest ``time_s`` again (first frame when ``None``), for retries.

    Sampling at the run's fps yields the same frame times as perception did, so a retried
    description is of the same picture as the first attempt.
    """
    from emollama.media.decode import MediaReader

    reader = MediaReader(Path(path))
    if not reader.info.has_video:
        return None, None
    best: tuple[float, np.ndarray, float] | None = None
    target = time_s or 0.0
    for frame in reader.frames(fps):
        gap = abs(frame.time_s - target)
        if best is None or gap < best[0]:
            best = (gap, frame.rgb, frame.time_s)
        elif frame.time_s > target:
            break
    return (best[1], best[2]) if best is not None else (None, None)
