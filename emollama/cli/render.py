"""Rich rendering of an :class:`~emollama.schema.AnalysisResult` for the terminal."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from emollama.perception.action_units import AU_DESCRIPTIONS
from emollama.schema import AnalysisResult


def _bar(value: float, width: int = 24) -> str:
    n = int(round(value * width))
    return "█" * n + "·" * (width - n)


def render_result(console: Console, result: AnalysisResult) -> None:
    media = result.media
    head = Text.assemble(
        ("Emotion: ", "bold"), (f"{result.label or 'undetermined'}", "bold magenta"),
        (f"   ({result.label_set}, tier {result.tier})", "dim"),
        (f"\n{Path(media.path).name}: {media.kind}, {media.duration_s:.1f} s", "dim"),
    )
    scores = Table(show_header=False, box=None, pad_edge=False)
    for label, value in sorted(result.scores.items(), key=lambda kv: -kv[1]):
        style = "bold magenta" if label == result.label else ""
        scores.add_row(Text(label, style=style), Text(_bar(value), style="magenta" if style else "dim"),
                       f"{value:.3f}")
    console.print(Panel(Group(head, Text(""), scores), title="emollama analyze", expand=False))
    console.print(Panel(Text(result.reasoning), title="Reasoning", expand=False))

    clues = Table(title="Clues per modality", show_lines=True, expand=False)
    clues.add_column("modality", style="bold")
    clues.add_column("status")
    clues.add_column("evidence")
    clues.add_column("weight", justify="right")
    weights = {m.modality: m.weight for m in result.modality_scores}
    face, voice, words = result.clues.face, result.clues.voice, result.clues.words
    if face.status == "ok":
        face_weight = f"{weights.get('face', 0):.2f} / AU {weights.get('action_units', 0):.2f}"
        clues.add_row("face", "ok", "\n".join(_face_lines(result)), face_weight)
    else:
        clues.add_row("face", face.status, escape(face.note or ""), "0")
    if voice.status == "ok":
        clues.add_row("voice", "ok", "\n".join(_voice_lines(result)), f"{weights.get('voice', 0):.2f}")
    else:
        clues.add_row("voice", voice.status, escape(voice.note or ""), "0")
    if words.status == "ok":
        clues.add_row("words", "ok", "\n".join(_words_lines(result)), f"{weights.get('words', 0):.2f}")
    else:
        clues.add_row("words", words.status, escape(words.note or ""), "0")
    console.print(clues)
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}")
    t = result.timings_s
    stages = ", ".join(f"{k.removesuffix('_s')} {v:.2f}" for k, v in t.items() if k != "total_s")
    console.print(f"[dim]{t.get('total_s', 0):.2f} s ({stages})[/]")


def _face_lines(result: AnalysisResult) -> list[str]:
    face = result.clues.face
    lines = [f"face in {face.n_frames_with_face}/{face.n_frames} frames"
             f" (detection {face.mean_detection_confidence:.2f}, at most {face.max_faces_in_frame} face(s));"
             f" AU baseline: {face.baseline}"]
    if face.peak is not None:
        aus = sorted(((k, v) for k, v in face.peak.au.items() if v >= 0.5 and k != "AU45"), key=lambda kv: -kv[1])
        listed = ", ".join(f"{k} {v:.1f} ({AU_DESCRIPTIONS[k]})" for k, v in aus[:5]) or "no AU at 0.5 or more"
        lines.append(f"peak frame #{face.peak.index} at {face.peak.time_s:.2f} s: {listed}")
    if face.head_pose_deg:
        lines.append("head pose: " + ", ".join(f"{k} {v:+.0f}°" for k, v in face.head_pose_deg.items()))
    read = face.expression_clip or face.expression_mean
    top = sorted(read.items(), key=lambda kv: -kv[1])[:3]
    how = f" ({face.expression_pooling.replace('_', ' ')} of the frames)" if face.expression_clip else ""
    lines.append(f"expression model{how}: " + ", ".join(f"{k} {v:.2f}" for k, v in top))
    return lines


def _voice_lines(result: AnalysisResult) -> list[str]:
    voice = result.clues.voice
    p, r = voice.prosody, voice.relative

    def num(d: dict[str, float | None], key: str) -> float:
        return d.get(key) or 0.0

    lines = [
        f"{len(voice.speech_segments)} speech segment(s), {voice.speech_duration_s:.1f} s"
        f" (VAD confidence {voice.vad_confidence:.2f})",
        f"F0 median {num(p, 'f0_median_hz'):.0f} Hz ({num(r, 'pitch_level_vs_norm_st'):+.1f} st vs typical),"
        f" range {num(r, 'pitch_range_st'):.1f} st; loudness swing {num(r, 'loudness_peak_vs_baseline_db'):.0f} dB",
        f"jitter {num(p, 'jitter_local'):.3f}, shimmer {num(p, 'shimmer_local'):.3f}, HNR {num(p, 'hnr_db'):.1f} dB,"
        f" ~{num(p, 'syllable_rate_per_s'):.1f} syllables/s",
    ]
    if voice.arousal is not None:
        lines.append(f"arousal {voice.arousal:+.2f}")
    return lines


def _words_lines(result: AnalysisResult) -> list[str]:
    words = result.clues.words
    lines = [escape(f"[{words.source}{', ' + words.language if words.language else ''}] {words.text}")]
    if words.asr_confidence is not None:
        lines.append(f"ASR confidence {words.asr_confidence:.2f}")
    if words.cues:
        lines.append(escape("emotion words: " + ", ".join(f"{c.word} → {c.emotion}" for c in words.cues)))
    if words.polarity is not None:
        lines.append(f"polarity {words.polarity:+.2f}")
    return lines
