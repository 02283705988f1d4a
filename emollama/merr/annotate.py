"""One clip → one :class:`~emollama.merr.record.MerrRecord` (coarse, filter, fine).

Perception runs once per clip through :meth:`emollama.perception.pipeline.Perceiver.perceive`;
the clues-tier label and scores are then computed from that same perception by
:class:`emollama.recognize.clues.CluesRecognizer` (reused rather than re-run, so the face is not
tracked twice).
With a :class:`~emollama.merr.vision.VisionDescriber` the already-decoded peak frame is also shown
to a vision model; its description goes beside the measured one and, when it passes the filter,
into the caption (MERR's caption carries a model-written scene description).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from emollama.describe import AU_PHRASES, active_aus, describe_voice, intensity_word
from emollama.merr.consistency import DEFAULT_FACE_RANK, check_consistency
from emollama.merr.fine import FineWriter, TemplateFineWriter
from emollama.merr.inputs import ClipItem
from emollama.merr.record import (
    ActiveAU,
    Coarse,
    FilterInfo,
    Fine,
    LabelInfo,
    MerrRecord,
    PeakInfo,
    SubtitleInfo,
    ToneInfo,
    VisualDescription,
)
from emollama.merr.tone import choose_tone
from emollama.merr.vision import VisionDescriber, frame_at
from emollama.merr.visual import describe_objective
from emollama.perception.pipeline import Perceiver, Perception
from emollama.recognize.clues import CluesRecognizer


@dataclass(frozen=True)
class AnnotateOptions:
    label_set: str = "merr9"
    au_threshold: float = 1.0
    min_strength: float = 0.6
    fine_for_dropped: bool = False
    face_rank: int = DEFAULT_FACE_RANK
    """A label the facial-expression model ranks this high keeps a clip the AUs alone would drop (0: AUs only)."""


def _version() -> str:
    from emollama import __version__

    return __version__


def _classify(p: Perception, label_set: str) -> tuple[str | None, dict[str, float], str]:
    """Clues-tier prediction on an existing perception (what ``analyze`` would answer)."""
    result = CluesRecognizer().recognize(p, label_set)
    return result.label, result.scores, result.reasoning


def face_scores_for(p: Perception, label: str) -> dict[str, float] | None:
    """The facial-expression model's clip scores in which ``label`` can appear, for the MERR filter.

    Its own classes when it has the label; otherwise projected onto the first label set that holds
    the label *and* that the model's mass can reach (worried: mer6, where fear's mass goes to
    worried; merr9 keeps fear as fear). None when no set lets the model speak to the label (doubt)
    or without a face the detector confirmed: the AU rule then decides alone.
    """
    from emollama.labels import LABEL_SETS, project_scores, reachable_labels
    from emollama.recognize.fusion import face_confirmed

    probs = p.face.expression_probs
    if not probs or not face_confirmed(p.face.clues):
        return None
    if label in probs:
        return dict(probs)
    for label_set in LABEL_SETS.values():
        if label in reachable_labels(probs, label_set):
            return project_scores(probs, label_set)
    return None


def _peak_frame(p: Perception) -> tuple[np.ndarray | None, tuple[float, float, float, float] | None, float | None]:
    """Decode the peak frame again (or the first frame without a face) for the objective description.

    Returns ``(rgb, face box, frame time)``; the time lets a failed vision request be retried later
    on the same frame without running perception again.
    """
    if not p.media.has_video:
        return None, None, None
    peak = p.clues.face.peak
    want = peak.index if peak is not None else 0
    box = None
    if peak is not None and p.scan.main is not None:
        box = next((o.box for o in p.scan.main.observations if o.frame_index == want), None)
    for frame in p.reader.frames(p.fps):
        if frame.index == want:
            return frame.rgb, box, frame.time_s
    return None, box, None


def scene_text(visual_objective: dict, vision: VisualDescription | None) -> str:
    """The scene sentence(s) for the caption: the vision model's when it passed the filter, else the measured."""
    if vision is not None and vision.status == "ok" and vision.text:
        return vision.text
    return str(visual_objective.get("text", ""))


def caption_for(visual_objective: str, visual_expression: str, tone: str | None, subtitle: str) -> str:
    """MERR's coarse template, in our words: scene, expression, tone, then what is said."""
    parts = [visual_objective.rstrip(".") + "."]
    parts.append(f"The facial expression shows {visual_expression}.")
    parts.append(f"The tone of voice is {tone}." if tone else "No tone of voice can be heard.")
    parts.append(f"The person says: {subtitle}" if subtitle else "No words are spoken.")
    return " ".join(parts)


def annotate_clip(perceiver: Perceiver, item: ClipItem, options: AnnotateOptions,
                  fine_writer: FineWriter | None = None, *, describer: VisionDescriber | None = None) -> MerrRecord:
    """Perceive, describe, filter and (for kept clips) write the fine paragraph for one clip."""
    t0 = time.perf_counter()
    p = perceiver.perceive(item.path, subtitle=item.subtitle)
    t_perceive = time.perf_counter() - t0

    t = time.perf_counter()
    predicted, scores, clues_reasoning = _classify(p, options.label_set)
    face, voice, words = p.clues.face, p.clues.voice, p.clues.words
    if item.label is not None:
        label = LabelInfo(value=item.label, source="ground_truth", given_as=item.label_given_as)
    elif predicted is not None:
        label = LabelInfo(value=predicted, source="pseudo", confidence=round(scores[predicted], 4))
    else:
        label = LabelInfo(value="neutral", source="pseudo", confidence=0.0)

    peak = None
    actives: list[ActiveAU] = []
    if face.peak is not None:
        native = round(face.peak.time_s * p.media.native_fps) if p.media.native_fps else None
        peak = PeakInfo(index=face.peak.index, native_frame=native, time_s=face.peak.time_s,
                        total_intensity=face.peak.total_intensity, au=face.peak.au)
        actives = [ActiveAU(au=name, intensity=round(v, 2), phrase=f"{AU_PHRASES[name]} {intensity_word(v)}")
                   for name, v in active_aus(face.peak.au, options.au_threshold, top=6) if name in AU_PHRASES]
    if actives:
        visual_expression = "; ".join(a.phrase for a in actives)
    elif peak is not None:
        visual_expression = "a face close to its resting state"
    else:
        visual_expression = "no visible face"
    tone = choose_tone(voice, words)
    frame, box, frame_time = _peak_frame(p)
    objective = describe_objective(faces=face.max_faces_in_frame, frame=frame, box=box, pose=face.head_pose_deg)
    subtitle = SubtitleInfo(text=words.text or "", source=words.source, language=words.language)
    decision = check_consistency(label.value, face.peak.au if face.peak else None, face_status=face.status,
                                 corner_asymmetry=p.face.corner_asymmetry, au_threshold=options.au_threshold,
                                 min_strength=options.min_strength, face_scores=face_scores_for(p, label.value),
                                 face_rank=options.face_rank)
    t_describe = time.perf_counter() - t
    vision = None
    timings: dict[str, float] = {}
    if describer is not None:
        t = time.perf_counter()
        vision = describer.describe(frame, frame_time)
        timings["vision_s"] = round(time.perf_counter() - t, 3)
    caption = caption_for(scene_text(objective.to_dict(), vision), visual_expression, tone.word, subtitle.text)

    record = MerrRecord(
        emollama_version=_version(), name=item.name, path=str(item.path), duration_s=p.media.duration_s,
        native_fps=p.media.native_fps,
        n_frames=round(p.media.duration_s * p.media.native_fps) if p.media.native_fps else p.media.n_sampled_frames,
        has_audio=p.media.has_audio, label=label, prediction={k: round(v, 4) for k, v in scores.items()},
        predicted_label=predicted,
        coarse=Coarse(peak=peak, active_aus=actives, visual_expression=visual_expression,
                      audio_tone=ToneInfo(word=tone.word, evidence=tone.evidence),
                      audio_description="; ".join(describe_voice(voice)) if voice.status == "ok" else "",
                      subtitle=subtitle, visual_objective=objective.to_dict(), visual_description=vision,
                      caption=caption),
        filter=FilterInfo(**decision.to_dict()),
        fine=Fine(status="skipped", source="none", reason="not written yet"),
        clues_reasoning=clues_reasoning,
        timings_s={"perception_s": round(t_perceive, 3), "describe_and_filter_s": round(t_describe, 3),
                   **timings, **{k: round(v, 3) for k, v in p.timings.items()}},
        warnings=list(p.warnings),
    )
    return write_fine(record, fine_writer or TemplateFineWriter(), options)


def write_fine(record: MerrRecord, writer: FineWriter, options: AnnotateOptions) -> MerrRecord:
    """Run the fine step on a record (also used to retry ``llm_error`` clips from saved records)."""
    if not record.filter.kept and not options.fine_for_dropped:
        fine = Fine(status="skipped", source="none", reason=f"dropped by the MERR filter ({record.filter.code})")
        return record.model_copy(update={"fine": fine})
    t = time.perf_counter()
    fine = writer.write(record)
    timings = {**record.timings_s, "fine_s": round(time.perf_counter() - t, 3)}
    return record.model_copy(update={"fine": fine, "timings_s": timings})



def retry_vision(record: MerrRecord, describer: VisionDescriber, fps: float) -> MerrRecord:
    """Redo a failed vision description from the saved record (the frame is decoded again, perception is not).

    The caption is rebuilt, since it carries the scene text. The caller redoes the fine step
    afterwards when the description changed, because the fine prompt includes it.
    """
    previous = record.coarse.visual_description
    t = time.perf_counter()
    time_s = previous.frame_time_s if previous is not None and previous.frame_time_s is not None else (
        record.coarse.peak.time_s if record.coarse.peak is not None else None)
    frame, frame_time = frame_at(record.path, time_s, fps)
    vision = describer.describe(frame, frame_time, previous=previous)
    c = record.coarse
    caption = caption_for(scene_text(c.visual_objective, vision), c.visual_expression, c.audio_tone.word,
                          c.subtitle.text)
    coarse = c.model_copy(update={"visual_description": vision, "caption": caption})
    timings = {**record.timings_s, "vision_s": round(time.perf_counter() - t, 3)}
    return record.model_copy(update={"coarse": coarse, "timings_s": timings})
