"""Run report: kept/dropped counts and reasons, label distribution, top AUs per label, timings.

"Top AUs per label" follows the MERR paper's per-class AU statistics: for each label, how often
each AU is active (≥ the annotation threshold) at the peak frame of the clips with that label.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from statistics import mean
from typing import Any

from emollama.files import atomic_write_text
from emollama.merr.record import MerrRecord

STAGES = ("decode_and_face_s", "audio_decode_s", "voice_s", "asr_s", "text_s", "describe_and_filter_s", "vision_s",
          "fine_s", "perception_s")


def summarize(records: list[MerrRecord], errors: list[dict], stats: dict[str, Any] | None = None) -> dict[str, Any]:
    kept = [r for r in records if r.filter.kept]
    by_label: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        for a in r.coarse.active_aus:
            by_label[r.label.value][a.au] += 1
    label_counts = Counter(r.label.value for r in records)
    timings = {s: round(mean(r.timings_s[s] for r in records if s in r.timings_s), 3)
               for s in STAGES if any(s in r.timings_s for r in records)}
    total_clip_s = [r.timings_s.get("perception_s", 0.0) + r.timings_s.get("describe_and_filter_s", 0.0)
                    + r.timings_s.get("vision_s", 0.0) + r.timings_s.get("fine_s", 0.0) for r in records]
    described = [r.coarse.visual_description for r in records if r.coarse.visual_description is not None]
    out: dict[str, Any] = {
        "clips": len(records) + len(errors), "annotated": len(records), "failed": len(errors),
        "kept": len(kept), "dropped": len(records) - len(kept),
        "filter_codes": dict(Counter(r.filter.code for r in records).most_common()),
        "labels": dict(label_counts.most_common()),
        "labels_kept": dict(Counter(r.label.value for r in kept).most_common()),
        "label_sources": dict(Counter(r.label.source for r in records)),
        "fine_status": dict(Counter(f"{r.fine.status}/{r.fine.source}" for r in records)),
        "fine_reasons": dict(Counter((r.fine.reason or "").split(":")[0] for r in records
                                     if r.fine.status in ("filtered", "llm_error"))),
        "top_aus": {lab: [(au, n, round(n / label_counts[lab], 2)) for au, n in c.most_common(5)]
                    for lab, c in sorted(by_label.items())},
        "mean_stage_s": timings,
        "mean_clip_s": round(mean(total_clip_s), 3) if total_clip_s else None,
        "tones": dict(Counter(r.coarse.audio_tone.word or "none" for r in records).most_common()),
        # Only runs with --llm-vision have descriptions; the status/reason counts show at a glance
        # whether the endpoint really reads images (many no_image filters mean it does not).
        "vision_status": dict(Counter(d.status for d in described)),
        "vision_reasons": dict(Counter((d.reason or "").split(":")[0] for d in described
                                       if d.status in ("filtered", "llm_error"))),
    }
    if stats:
        out["run"] = stats
        if stats.get("annotated") and stats.get("wall_s"):
            out["clips_per_min"] = round(60.0 * stats["annotated"] / stats["wall_s"], 2)
    return out


def _table(header: tuple[str, ...], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(summary: dict[str, Any], records: list[MerrRecord], errors: list[dict]) -> str:
    s = summary
    parts = ["# MERR annotation report", "",
             f"{s['clips']} clips: {s['annotated']} annotated, {s['failed']} failed; "
             f"**{s['kept']} kept**, {s['dropped']} dropped by the MERR filter (AUs, then the face model).", ""]
    if "clips_per_min" in s:
        run = s["run"]
        parts += [f"Last run: {run['annotated']} clips in {run['wall_s']:.1f} s wall "
                  f"(**{s['clips_per_min']} clips/min**, workers={run['workers']}, "
                  f"ray={run.get('ray_address') or 'no'}; models loading included).", ""]
    parts += ["## Filter decisions", "", _table(("code", "clips"), list(s["filter_codes"].items())), "",
              "## Labels", "", _table(("label", "all", "kept"),
                                      [(k, v, s["labels_kept"].get(k, 0)) for k, v in s["labels"].items()]),
              "", f"Label sources: {s['label_sources']}", "",
              "## Top action units per label (share of clips with the AU active at the peak)", "",
              _table(("label", "top AUs"), [(lab, ", ".join(f"{au} {share:.0%}" for au, _n, share in aus) or "-")
                                            for lab, aus in s["top_aus"].items()]), "",
              "## Fine annotations", "", _table(("status/source", "clips"), list(s["fine_status"].items())), ""]
    if s["fine_reasons"]:
        parts += ["Filtered or failed fine annotations by reason:", "",
                  _table(("reason", "clips"), list(s["fine_reasons"].items())), ""]
    if s.get("vision_status"):
        parts += ["## Vision descriptions of the peak frame", "",
                  _table(("status", "clips"), list(s["vision_status"].items())), ""]
        if s["vision_reasons"]:
            parts += ["Filtered or failed descriptions by reason:", "",
                      _table(("reason", "clips"), list(s["vision_reasons"].items())), ""]
    parts += ["## Mean time per clip and stage (seconds)", "",
              _table(("stage", "mean s"), list(s["mean_stage_s"].items())), "",
              f"Mean time per clip (perception + description + vision + fine): {s['mean_clip_s']} s", "",
              "## Clips", "", _table(("clip", "label", "source", "kept", "reason", "fine"),
                                     [(r.name, r.label.value, r.label.source, "yes" if r.filter.kept else "no",
                                       r.filter.reason.replace("|", "/"), f"{r.fine.status}/{r.fine.source}")
                                      for r in records])]
    if errors:
        parts += ["", "## Failures", "", _table(("clip", "error"), [(e["name"], e["error"]) for e in errors])]
    return "\n".join(parts) + "\n"


def plot_summary(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    ax = axes[0][0]
    codes = summary["filter_codes"]
    ax.barh(list(codes), list(codes.values()), color="tab:blue")
    ax.set_title(f"filter decisions (kept {summary['kept']} / {summary['annotated']})")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax = axes[0][1]
    labels = list(summary["labels"])
    ax.bar(labels, [summary["labels"][k] for k in labels], label="all", color="lightgray")
    ax.bar(labels, [summary["labels_kept"].get(k, 0) for k in labels], label="kept", color="tab:green")
    ax.set_title("label distribution")
    ax.legend()
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax = axes[1][0]
    aus = sorted({au for items in summary["top_aus"].values() for au, _n, _s in items})
    labs = list(summary["top_aus"])
    grid = [[dict((au, share) for au, _n, share in summary["top_aus"][lab]).get(a, 0.0) for a in aus] for lab in labs]
    if aus and labs:
        im = ax.imshow(grid, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(aus)), aus, rotation=60)
        ax.set_yticks(range(len(labs)), labs)
        fig.colorbar(im, ax=ax, label="share of clips")
    ax.set_title("top AUs per label at the peak frame")
    ax = axes[1][1]
    stages = {k: v for k, v in summary["mean_stage_s"].items() if k != "perception_s"}
    ax.barh(list(stages), list(stages.values()), color="tab:orange")
    ax.set_title("mean seconds per clip and stage")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(out: Path, records: list[MerrRecord], errors: list[dict],
                 stats: dict[str, Any] | None = None) -> tuple[Path, Path]:
    import json

    out = Path(out)
    summary = summarize(records, errors, stats)
    md, png = out / "report.md", out / "report.png"
    atomic_write_text(md, render_markdown(summary, records, errors))
    atomic_write_text(out / "report.json", json.dumps(summary, indent=1, ensure_ascii=False))
    plot_summary(summary, png)
    return md, png
