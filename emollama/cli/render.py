"""Rich rendering of an :class:`~emollama.schema.AnalysisResult` for the terminal."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from emollama.describe import AU_PHRASES
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
    face = result.clues.face
    if face.status == "ok":
        ev = [f"face in {face.n_frames_with_face}/{face.n_frames} frames (conf {face.mean_detection_confidence:.2f}, "
              f"{face.max_faces_in_frame} face(s) max); AU baseline: {face.baseline}"]
        if face.peak is not None:
            aus = sorted(((k, v) for k, v in face.peak.au.items() if v >= 0.5 and k != "AU45"), key=lambda kv: -kv[1])
            ev.append(f"peak frame #{face.peak.index} at {face.peak.time_s:.2f} s: " +
                      (", ".join(f"{k} {v:.1f} ({AU_PHRASES[k].split(' ', 1)[1][:28]})" for k, v in aus[:5]) or "no AU ≥ 0.5"))
        if face.head_pose_deg:
            ev.append("head pose: " + ", ".join(f"{k} {v:+.0f}°" for k, v in face.head_pose_deg.items()))
        top = sorted(face.expression_mean.items(), key=lambda kv: -kv[1])[:3]
        ev.append("expression model: " + ", ".join(f"{k} {v:.2f}" for k, v in top))
        clues.add_row("face", "ok", "\n".join(ev), f"{weights.get('face', 0):.2f} / AU {weights.get('action_units', 0):.2f}")
    else:
        clues.add_row("face", face.status, escape(face.note or ""), "0")
    voice = result.clues.voice
    if voice.status == "ok":
        p, r = voice.prosody, voice.relative
        ev = [f"{len(voice.speech_segments)} speech segment(s), {voice.speech_duration_s:.1f} s (VAD conf {voice.vad_confidence:.2f})",
              f"F0 median {p.get('f0_median_hz') or 0:.0f} Hz, range {r.get('pitch_range_st') or 0:.1f} st, "
              f"{r.get('pitch_level_vs_norm_st') or 0:+.1f} st vs typical; loudness swing {r.get('loudness_peak_vs_baseline_db') or 0:.0f} dB",
              f"jitter {p.get('jitter_local') or 0:.3f}, shimmer {p.get('shimmer_local') or 0:.3f}, HNR {p.get('hnr_db') or 0:.1f} dB, "
              f"~{p.get('syllable_rate_per_s') or 0:.1f} syll/s; arousal {voice.arousal:+.2f}" if voice.arousal is not None else ""]
        clues.add_row("voice", "ok", "\n".join(e for e in ev if e), f"{weights.get('voice', 0):.2f}")
    else:
        clues.add_row("voice", voice.status, escape(voice.note or ""), "0")
    words = result.clues.words
    if words.status == "ok":
        ev = [escape(f"[{words.source}{', ' + words.language if words.language else ''}] {words.text}")]
        if words.asr_confidence is not None:
            ev.append(f"ASR confidence {words.asr_confidence:.2f}")
        if words.cues:
            ev.append(escape("emotion words: " + ", ".join(f"{c.word} → {c.emotion}" for c in words.cues)))
        if words.polarity is not None:
            ev.append(f"polarity {words.polarity:+.2f}")
        clues.add_row("words", "ok", "\n".join(ev), f"{weights.get('words', 0):.2f}")
    else:
        clues.add_row("words", words.status, escape(words.note or ""), "0")
    console.print(clues)
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}")
    t = result.timings_s
    console.print(f"[dim]{t.get('total_s', 0):.2f} s ({', '.join(f'{k[:-2]} {v:.2f}' for k, v in t.items() if k != 'total_s')})[/]")
