"""MER-OV exactly as the MER2024 challenge scores it, from its frozen per-sample synonym cache.

The official scorer (``MERTools/MER2024/main-ov.py``) asks GPT-3.5 once per sample to group the
lower-cased union of the reference and predicted words into synonym lists, saves each reply as
``NAME.npy`` (a NumPy string: the reply text, e.g. ``"[['happy', 'joyful'], ['relaxed']]"``), and
ships those replies (``ov_store/openset-synonym.zip``) so its number can be recomputed offline. This
module re-implements that computation — our code, their definition — so a user holding such a cache
gets the official number, not an approximation:

1. each side's ``openset`` cell is split the way the official scorer splits it (the text between
   the first ``[`` and the next ``]``, cut at every quote, pieces that are empty or a lone comma
   dropped; nothing is stripped) and lower-cased;
2. the sample's reply is split the same way into groups; every word maps to its group's first
   word (a word listed in two groups takes the later one, as the official dictionary does);
3. per sample, after mapping: accuracy = |G∩P|/|P| and recall = |G∩P|/|G|; an empty prediction
   scores 0 on both;
4. means over the samples that have a cache entry; the MER-OV score is their mean.

Where the official script would stop with a Python exception we go on and say so instead: a
reference without a cache entry is listed and not scored (the official script only iterates over
cache entries), a cache entry without a reference is listed and ignored, a missing or failed
prediction scores 0 (as an empty one), and a reference with an empty list cannot define recall
and is excluded. None of these happen with the official files.

A cache only covers the words of the predictions it was made for: a different model's words that
the cache does not list are matched literally, so the result is then *not* the official number.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emollama.evaluate.errors import EvaluationInputError
from emollama.evaluate.ov import OvResult, OvSample
from emollama.evaluate.readers import Record, Table, _list, align, alignment_warnings, normalize_name

#: Where the frozen cache of the MER2024 baseline comes from (Apache-2.0, "non-commercial use" note
#: in its README); it is not shipped with emollama, the command takes its path.
OFFICIAL_CACHE_SOURCE = "https://github.com/zeroQiaoba/MERTools/blob/master/MER2024/ov_store/openset-synonym.zip"

_QUOTES = re.compile(r"['\"]")
_BRACKETS = re.compile(r"[\[\]]")


def _pieces(text: str) -> list[str]:
    """Cut at quotes; keep pieces that are neither blank nor a lone comma (unstripped, as the official split)."""
    return [piece for piece in _QUOTES.split(text) if piece.strip() not in ("", ",")]


def official_openset(value: object) -> list[str] | None:
    """An ``openset`` cell as the MER2024 scorer reads it, or ``None`` when it is not in list form.

    An empty cell is an empty list. A JSON list (already parsed by the reader) is taken item by
    item. A string must contain ``[``: the official reader fails on anything else, so such a cell
    is reported by the caller and read with emollama's own parser instead.
    """
    if value is None:
        return []
    if isinstance(value, list):
        return [str(item) for item in value]
    text = str(value)
    if text == "" or text.strip().lower() == "nan":
        return []
    if "[" not in text:
        return None
    return _pieces(text.split("[", 1)[1].split("]", 1)[0])


def parse_synonym_reply(reply: str) -> list[list[str]]:
    """The groups of one cached reply: split at brackets, then each part at quotes (official rule)."""
    return [_pieces(part) for part in _BRACKETS.split(reply) if part.strip() not in ("", ",")]


def synonym_map(groups: list[list[str]]) -> dict[str, str]:
    """Word → first word of its group; later groups win for a word listed twice."""
    mapping: dict[str, str] = {}
    for group in groups:
        for word in group:
            mapping[word] = group[0]
    return mapping


@dataclass(frozen=True)
class SynonymCache:
    """Per-sample synonym groups read from an official-format cache, with where they came from."""

    path: Path
    groups: dict[str, list[list[str]]]
    sha256: str


def _groups_from_npy(data: bytes, member: str) -> list[list[str]]:
    """Groups of one ``NAME.npy``: the official 0-d string reply, or a 2-d string table (one row per group)."""
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        raise EvaluationInputError(
            f"{member}: not a plain NumPy string array ({exc}); the official cache stores each GPT reply "
            "as a string, and pickled objects are not loaded"
        ) from exc
    if array.dtype.kind not in "US":
        raise EvaluationInputError(f"{member}: expected strings, found dtype {array.dtype}")
    if array.ndim == 0:
        reply = array.item()
        return parse_synonym_reply(reply.decode("utf-8") if isinstance(reply, bytes) else str(reply))
    if array.ndim == 2:
        return [[str(w) for w in row if str(w)] for row in array.tolist() if any(str(w) for w in row)]
    raise EvaluationInputError(
        f"{member}: a synonym entry is a string (the GPT reply) or a 2-d table of words, not shape {array.shape}"
    )


def load_synonym_cache(path: str | Path) -> SynonymCache:
    """Read a folder of ``NAME.npy`` files, or a ``.zip`` of them (any sub-folder), keyed by sample name."""
    path = Path(path)
    files: list[tuple[str, str, bytes]] = []  # (sample name, member shown in errors, bytes)
    if path.is_dir():
        for npy in sorted(path.rglob("*.npy")):
            files.append((npy.stem, str(npy), npy.read_bytes()))
    elif path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                base = info.filename.rsplit("/", 1)[-1]
                if info.is_dir() or not base.endswith(".npy") or base.startswith("._") or "__MACOSX" in info.filename:
                    continue
                files.append((base[:-4], f"{path}:{info.filename}", archive.read(info)))
    elif path.exists():
        raise EvaluationInputError(f"--synonyms {path}: expected a folder of NAME.npy files or a .zip of them")
    else:
        raise EvaluationInputError(f"--synonyms {path}: no such file or folder")
    if not files:
        raise EvaluationInputError(f"--synonyms {path}: holds no .npy file")
    digest = hashlib.sha256()
    groups: dict[str, list[list[str]]] = {}
    seen: dict[str, str] = {}
    for stem, member, data in files:
        name = normalize_name(stem)
        if name in seen:
            raise EvaluationInputError(f"--synonyms {path}: two entries for sample {name!r} ({seen[name]}, {member})")
        seen[name] = member
        groups[name] = _groups_from_npy(data, member)
        digest.update(name.encode("utf-8") + b"\0" + hashlib.sha256(data).digest())
    return SynonymCache(path=path, groups=groups, sha256=digest.hexdigest())


def _side(record: Record | None, fallback_names: list[str]) -> list[str]:
    """Lower-cased official words of one record; a cell not in list form falls back to our parser (listed)."""
    if record is None or record.status == "error":
        return []
    words = official_openset(record.openset_raw)
    if words is None:
        fallback_names.append(record.name)
        words = list(record.openset or ())
    return [word.lower() for word in words]


def _require_opensets(table: Table, flag_role: str) -> None:
    if not any(r.openset is not None for r in table.records.values()):
        raise EvaluationInputError(
            f"{table.path}: --synonyms scores openset lists, but the {flag_role} have no openset column "
            f"(columns: {list(table.columns)[:12]})"
        )


def evaluate_ov_official(refs: Table, preds: Table, cache: SynonymCache) -> OvResult:
    """MER2024 MER-OV on ``openset`` lists with a frozen per-sample synonym cache (module docstring)."""
    _require_opensets(refs, "references")
    _require_opensets(preds, "predictions")
    alignment = align(refs, preds)
    warnings = [*refs.warnings, *preds.warnings, *alignment_warnings(alignment, preds, "scored 0")]
    fallback: list[str] = []
    no_entry: list[str] = []
    empty_refs: list[str] = []
    samples: list[OvSample] = []
    for name in alignment.names:
        if name not in cache.groups:
            no_entry.append(name)
            continue
        mapping = synonym_map(cache.groups[name])
        ref_words = _side(refs.records[name], fallback)
        pred_record = preds.records.get(name)
        pred_words = _side(pred_record, fallback)
        gt = {mapping.get(w, w) for w in ref_words}
        pred = {mapping.get(w, w) for w in pred_words}
        if not gt:
            empty_refs.append(name)
            continue
        status = "missing" if pred_record is None else "error" if pred_record.status == "error" else "ok"
        if status == "ok" and not pred:
            status = "empty_prediction"
        hit = len(gt & pred)
        accuracy, recall = (hit / len(pred), hit / len(gt)) if pred else (0.0, 0.0)
        samples.append(
            OvSample(
                name=name,
                reference_words=tuple(ref_words),
                predicted_words=tuple(pred_words),
                reference_groups=tuple(sorted(gt)),
                predicted_groups=tuple(sorted(pred)),
                accuracy=accuracy,
                recall=recall,
                accuracy_l1=None,
                recall_l1=None,
                status=status,
            )
        )
    unused = sorted(set(cache.groups) - set(refs.records))
    if no_entry:
        warnings.append(
            f"{len(no_entry)} reference sample(s) have no synonym-cache entry (not scored): {_list(no_entry)}"
        )
    if unused:
        warnings.append(f"{len(unused)} synonym-cache entr(ies) name no reference sample (ignored): {_list(unused)}")
    if empty_refs:
        warnings.append(f"{len(empty_refs)} reference(s) have an empty openset and are excluded: {_list(empty_refs)}")
    if fallback:
        warnings.append(
            f"{len(fallback)} openset cell(s) are not written as a [...] list, which the official scorer cannot "
            f"read; read with emollama's parser instead: {_list(sorted(set(fallback)))}"
        )
    if not samples:
        raise EvaluationInputError(
            f"--synonyms {cache.path}: no reference sample has a cache entry (cache names e.g. "
            f"{_list(sorted(cache.groups), 3)}; reference names e.g. {_list(list(refs.records), 3)})"
        )
    summary = _summary(samples, refs, cache, no_entry, unused, empty_refs, fallback)
    return OvResult(samples, alignment, warnings, summary, [])


def _summary(
    samples: list[OvSample],
    refs: Table,
    cache: SynonymCache,
    no_entry: list[str],
    unused: list[str],
    empty_refs: list[str],
    fallback: list[str],
) -> dict[str, Any]:
    """The official means (np.mean over per-sample floats, as the official script) and the cache's provenance."""
    accuracy = float(np.mean([s.accuracy for s in samples]))
    recall = float(np.mean([s.recall for s in samples]))
    mean = float(np.mean([accuracy, recall]))
    return {
        "n_references": len(refs.records),
        "n_scored": len(samples),
        "grouping": "mer2024-cache",
        "extractor": "openset",
        "emotion_wheel_version": None,
        "word_sources": {"reference:openset": len(samples), "prediction:openset": len(samples)},
        "status_counts": dict(sorted(Counter(s.status for s in samples).items())),
        "synonym_groups": {"accuracy": accuracy, "recall": recall, "mean": mean},
        "basic_categories": {"accuracy": None, "recall": None, "mean": None, "n_scored": 0},
        "synonym_cache": {
            "path": str(cache.path),
            "sha256": cache.sha256,
            "entries": len(cache.groups),
            "references_without_entry": no_entry,
            "entries_without_reference": unused,
            "empty_references": empty_refs,
            "cells_not_in_list_form": sorted(set(fallback)),
        },
        "unknown_words": {},
    }
