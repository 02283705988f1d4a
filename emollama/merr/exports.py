"""Exports of finished MERR records, and loaders that read each export back.

Every format carries the record's label *and where it came from* (``ground_truth`` or ``pseudo``):
MER-Factory overwrites ground truth with an AU pseudo-label in its Emotion-LLaMA export and drops
it from its CSV; here the label a user supplied is the one written everywhere.

Formats:

* ``emotion-llama``: ``MERR_coarse_grained.{txt,json}``, ``MERR_fine_grained.{txt,json}`` and
  ``transcription_en_all.csv`` (``name,sentence``), laid out as the original loader
  (``first_face.py``) reads them. TXT lines are ``name count label valence``; valence is not
  predicted, so it is the original test lists' placeholder ``-10`` (the loader never reads it).
  Only labels in the nine Emotion-LLaMA classes are written (its ``emo2idx`` raises on others);
  skipped clips are counted in ``export_info.json``.
* ``sharegpt``: LLaMA-Factory ShareGPT JSONL (``messages`` + ``videos``), one line per task
  (emotion label, coarse caption, fine reasoning), each ``<video>`` tag matched by one media path,
  the instruction chosen deterministically from the clip name; plus a ``dataset_info.json`` entry.
* ``hf``: a Hugging Face ``datasets`` folder (``save_to_disk``), one row per clip.

:class:`ExportRecord` is the common projection; ``load_*`` functions return it so round trips are
checked field by field.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from emollama.errors import InputError
from emollama.files import atomic_write_text
from emollama.labels import get_label_set
from emollama.media.decode import IMAGE_SUFFIXES
from emollama.merr.record import MerrRecord

FORMATS = ("emotion-llama", "sharegpt", "hf")
VALENCE_PLACEHOLDER = "-10"


@dataclass(frozen=True)
class ExportRecord:
    name: str
    media_path: str
    label: str
    label_source: str
    label_confidence: float | None
    caption: str
    peak_index: int | None
    peak_time_s: float | None
    au_list: tuple[str, ...]
    subtitle: str
    fine: str | None
    fine_source: str | None
    n_frames: int
    filter_kept: bool = True
    """The MERR filter's decision: only ``export --keep-dropped`` writes rows where it is False."""
    filter_code: str = ""
    filter_reason: str = ""


def to_export(record: MerrRecord) -> ExportRecord:
    c = record.coarse
    fine_ok = record.fine.status == "ok" and record.fine.text
    return ExportRecord(
        name=record.name, media_path=record.path, label=record.label.value, label_source=record.label.source,
        label_confidence=record.label.confidence, caption=c.caption,
        peak_index=c.peak.native_frame if c.peak else None, peak_time_s=c.peak.time_s if c.peak else None,
        au_list=tuple(a.au for a in c.active_aus), subtitle=c.subtitle.text,
        fine=record.fine.text if fine_ok else None, fine_source=record.fine.source if fine_ok else None,
        n_frames=record.n_frames, filter_kept=record.filter.kept, filter_code=record.filter.code,
        filter_reason=record.filter.reason,
    )


def select(records: list[MerrRecord], include_dropped: bool = False) -> list[ExportRecord]:
    """Records that pass the MERR filter (all records with ``include_dropped``, each with its decision), as rows."""
    return [to_export(r) for r in records if include_dropped or r.filter.kept]


# --- Emotion-LLaMA -----------------------------------------------------------------------------------------
def export_emotion_llama(rows: list[ExportRecord], dest: Path, label_set: str = "merr9") -> dict:
    """The original project's files. Its code knows the nine MERR classes only (``merr9``, the
    default); ``emollama train`` reads any label set, so ``label_set`` may widen what is kept (e.g.
    ``dfew7`` keeps disgust)."""
    dest.mkdir(parents=True, exist_ok=True)
    allowed = get_label_set(label_set).labels
    usable = [r for r in rows if r.label in allowed]
    skipped = sorted(r.name for r in rows if r.label not in allowed)
    coarse = {r.name: {"caption": r.caption, "peak_index": r.peak_index, "peak_time_s": r.peak_time_s,
                       "AU_list": list(r.au_list), "label": r.label, "label_source": r.label_source,
                       "label_confidence": r.label_confidence,
                       "filter": {"kept": r.filter_kept, "code": r.filter_code, "reason": r.filter_reason}}
              for r in usable}
    fine_rows = [r for r in usable if r.fine]
    fine = {r.name: {"smp_reason_caption": r.fine, "reason_source": r.fine_source, "label": r.label,
                     "label_source": r.label_source} for r in fine_rows}

    def lines(items: list[ExportRecord]) -> str:
        return "".join(f"{r.name} {r.n_frames} {r.label} {VALENCE_PLACEHOLDER}\n" for r in items)

    atomic_write_text(dest / "MERR_coarse_grained.txt", lines(usable))
    atomic_write_text(dest / "MERR_fine_grained.txt", lines(fine_rows))
    atomic_write_text(dest / "MERR_coarse_grained.json", json.dumps(coarse, ensure_ascii=False, indent=1))
    atomic_write_text(dest / "MERR_fine_grained.json", json.dumps(fine, ensure_ascii=False, indent=1))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["name", "sentence"])
    for r in usable:
        writer.writerow([r.name, r.subtitle])
    atomic_write_text(dest / "transcription_en_all.csv", buf.getvalue())
    media = {r.name: r.media_path for r in usable}
    info = {"format": "emotion-llama", "label_set": label_set, "coarse": len(usable), "fine": len(fine_rows),
            "skipped_label_not_in_emotion_llama": skipped, "media": media}
    atomic_write_text(dest / "export_info.json", json.dumps(info, ensure_ascii=False, indent=1))
    return info


def load_emotion_llama(src: Path) -> list[ExportRecord]:
    """Read the Emotion-LLaMA files back the way its loader does (TXT rows, JSON by name, CSV by name)."""
    coarse = json.loads((src / "MERR_coarse_grained.json").read_text(encoding="utf-8"))
    fine = json.loads((src / "MERR_fine_grained.json").read_text(encoding="utf-8"))
    media = json.loads((src / "export_info.json").read_text(encoding="utf-8"))["media"]
    with open(src / "transcription_en_all.csv", newline="", encoding="utf-8") as fh:
        subs = {row["name"]: row["sentence"] for row in csv.DictReader(fh)}
    out = []
    for line in (src / "MERR_coarse_grained.txt").read_text(encoding="utf-8").splitlines():
        name, count, label, _valence = line.split(" ")
        c, f = coarse[name], fine.get(name)
        out.append(ExportRecord(
            name=name, media_path=media[name], label=label, label_source=c["label_source"],
            label_confidence=c["label_confidence"], caption=c["caption"], peak_index=c["peak_index"],
            peak_time_s=c["peak_time_s"], au_list=tuple(c["AU_list"]), subtitle=subs[name],
            fine=f["smp_reason_caption"] if f else None, fine_source=f["reason_source"] if f else None,
            n_frames=int(count), **_filter_fields(c.get("filter"))))
    return out


def _filter_fields(saved: dict | None) -> dict:
    """The filter columns of an Emotion-LLaMA export (absent in exports written before they existed)."""
    if not saved:
        return {}
    return {"filter_kept": bool(saved["kept"]), "filter_code": saved["code"], "filter_reason": saved["reason"]}


# --- ShareGPT / LLaMA-Factory -------------------------------------------------------------------------------
#: Our own instruction pools; the choice per clip is a hash of its name, so exports are reproducible.
INSTRUCTIONS: dict[str, tuple[str, ...]] = {
    "emotion": ("What emotion does the person in this video express? Answer with one word.",
                "Name the speaker's emotion in one word.",
                "Which single emotion best describes the person in the clip?"),
    "caption": ("Describe the person's facial expression, tone of voice and words in this video.",
                "Summarise the visible and audible emotional cues in the clip.",
                "What does the person look and sound like, and what do they say?"),
    "reason": ("Explain, from the facial movements, the voice and the words, why the person feels as they do.",
               "Which cues in the clip reveal the speaker's emotion, and what is that emotion?",
               "Reason step by step from the face, voice and speech to the emotion of the person."),
}


def _pick(name: str, task: str) -> str:
    pool = INSTRUCTIONS[task]
    return pool[int(hashlib.sha256(f"{name}/{task}".encode()).hexdigest(), 16) % len(pool)]


def export_sharegpt(rows: list[ExportRecord], dest: Path) -> dict:
    dest.mkdir(parents=True, exist_ok=True)
    lines = []
    for r in rows:
        tasks = [("emotion", r.label), ("caption", r.caption)] + ([("reason", r.fine)] if r.fine else [])
        # LLaMA-Factory decodes `videos` as video: a still image must go under `images` with <image>.
        kind = "image" if Path(r.media_path).suffix.lower() in IMAGE_SUFFIXES else "video"
        for task, answer in tasks:
            meta = {k: v for k, v in asdict(r).items()}
            meta["au_list"] = list(r.au_list)
            lines.append(json.dumps({
                "messages": [{"role": "user", "content": f"<{kind}>{_pick(r.name, task)}"},
                             {"role": "assistant", "content": answer}],
                f"{kind}s": [r.media_path], "task": task, "label": r.label, "label_source": r.label_source,
                "emollama": meta}, ensure_ascii=False))
    atomic_write_text(dest / "merr_sharegpt.jsonl", "".join(line + "\n" for line in lines))
    info = {"merr": {"file_name": "merr_sharegpt.jsonl", "formatting": "sharegpt",
                     "columns": {"messages": "messages", "videos": "videos", "images": "images"},
                     "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                              "assistant_tag": "assistant"}}}
    atomic_write_text(dest / "dataset_info.json", json.dumps(info, indent=1))
    return {"format": "sharegpt", "records": len(rows), "lines": len(lines)}


def load_sharegpt(src: Path) -> list[ExportRecord]:
    by_name: dict[str, ExportRecord] = {}
    for line in (src / "merr_sharegpt.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        meta = dict(row["emollama"])
        meta["au_list"] = tuple(meta["au_list"])
        rec = ExportRecord(**meta)
        answer = row["messages"][1]["content"]
        expected = {"emotion": rec.label, "caption": rec.caption, "reason": rec.fine}[row["task"]]
        media = row.get("videos") or row.get("images")
        if answer != expected or media != [rec.media_path] or row["label"] != rec.label:
            raise ValueError(f"{src}: line for {rec.name}/{row['task']} disagrees with its metadata")
        by_name[rec.name] = rec
    return list(by_name.values())


# --- Hugging Face datasets ----------------------------------------------------------------------------------
def export_hf(rows: list[ExportRecord], dest: Path) -> dict:
    from datasets import Dataset, Features, Sequence, Value
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()  # the CLI prints its own summary; nothing below the CLI prints

    feats = Features({"name": Value("string"), "media_path": Value("string"), "label": Value("string"),
                      "label_source": Value("string"), "label_confidence": Value("float64"),
                      "caption": Value("string"), "peak_index": Value("int64"), "peak_time_s": Value("float64"),
                      "au_list": Sequence(Value("string")), "subtitle": Value("string"), "fine": Value("string"),
                      "fine_source": Value("string"), "n_frames": Value("int64"), "filter_kept": Value("bool"),
                      "filter_code": Value("string"), "filter_reason": Value("string")})
    data = [{**asdict(r), "au_list": list(r.au_list)} for r in rows]
    Dataset.from_list(data, features=feats).save_to_disk(str(dest))
    return {"format": "hf", "records": len(rows)}


def load_hf(src: Path) -> list[ExportRecord]:
    from datasets import load_from_disk

    names = [f.name for f in fields(ExportRecord)]
    return [ExportRecord(**{**{k: row[k] for k in names if k in row}, "au_list": tuple(row["au_list"])})
            for row in load_from_disk(str(src))]


def export(records: list[MerrRecord], fmt: str, dest: Path, include_dropped: bool = False,
           label_set: str = "merr9") -> dict:
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    rows = select(records, include_dropped)
    if fmt == "emotion-llama":
        return export_emotion_llama(rows, Path(dest), label_set)
    fn = {"sharegpt": export_sharegpt, "hf": export_hf}[fmt]
    return fn(rows, Path(dest))


LOADERS = {"emotion-llama": load_emotion_llama, "sharegpt": load_sharegpt, "hf": load_hf}
