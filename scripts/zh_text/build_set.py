"""Rebuild the small labelled Chinese text-emotion set (train / dev / held-out) from SMP2020-EWECT.

Why: the multilingual text head (``e5_lr``) was trained on English only and read Mandarin almost
at random; there is no labelled Chinese text in ``../shared/data``. This script makes the Chinese
rows the head is trained, selected and measured on. The data itself is research data of the
SMP2020-EWECT evaluation and is **not** kept in this repository: the script takes a local copy of
the source files and writes the splits outside the repository (``--out``, e.g. ``../zh_text`` beside ``../shared``).

Source (public copy of the evaluation data; no licence file, the organisers released it for the
evaluation, i.e. research use — so never commit the rows):

* repository ``BrownSweater/BERT_SMP2020-EWECT``, commit ``bd9c4809100a26219d70e6dcfef8db08832ef560``
* ``data/raw/usual_eval_labeled.txt`` (the "usual" Weibo validation set, 2,000 rows) → train + dev
* ``data/raw/usual_test_labeled.txt`` (the "usual" Weibo test set, 5,000 rows) → held-out
* format: one JSON list of ``{"id", "content", "label"}``; labels happy (积极, "positive"), angry,
  sad, fear, surprise, neutral (无情绪).

Label mapping onto the heads' classes: happy → happy, angry → angry, sad → sad, fear → fear,
surprise → surprise, neutral → neutral (``emollama.labels.normalize_label``). EWECT's happy is the
wider "positive" class; it has no disgust, so disgust is never a reference label here.

Which rows: the ids listed in :data:`SPLITS`, chosen by reading the files in id order (dev: eval
ids 1-362; train: eval ids 365-727; held-out: test ids 1-365) and keeping every row that passes
:func:`usable` after :func:`clean` — short, speech-like sentences, as a transcript of a few seconds
would be — minus rows whose exact text was error-prone to copy (kaomoji, runs of 20+ identical
marks, leading spaces) and one exact duplicate of a dev row (eval 501 = eval 299). The script
re-checks the rule on every listed row and checks a SHA-256 of each split against the one the
shipped head was built from, so a different copy of the source is noticed.

    python scripts/zh_text/build_set.py --source DIR_WITH_THE_TWO_FILES --out ../zh_text
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import re
import sys
import unicodedata
from pathlib import Path

SOURCE_REPO = "BrownSweater/BERT_SMP2020-EWECT"
SOURCE_COMMIT = "bd9c4809100a26219d70e6dcfef8db08832ef560"
FILES = {"eval": "usual_eval_labeled.txt", "test": "usual_test_labeled.txt"}
LABEL_MAP = {"happy": "happy", "angry": "angry", "sad": "sad", "fear": "fear", "surprise": "surprise",
             "neutral": "neutral"}
MAX_CHARS = 45
#: Weibo emoticon codes such as ``[泪]``: a transcript never has them, so they are cut before the rule.
EMOTICON = re.compile(r"\[[^\[\]]{1,8}\]")

SPLITS: dict[str, tuple[str, list[int], str]] = {
    # split: (source file key, ids, SHA-256 of the written rows)
    "train": ("eval", [
        365, 371, 372, 373, 374, 375, 378, 379, 382, 383, 384, 386, 387, 389, 391, 394, 397, 398, 399, 400, 401,
        402, 404, 405, 406, 407, 408, 410, 412, 413, 415, 416, 417, 419, 420, 422, 424, 426, 427, 428, 430, 431,
        432, 435, 436, 438, 441, 444, 445, 447, 448, 450, 451, 452, 453, 455, 456, 457, 458, 460, 461, 463, 464,
        465, 466, 467, 468, 469, 471, 472, 475, 478, 479, 480, 481, 482, 483, 484, 486, 488, 490, 491, 492, 494,
        495, 496, 499, 500, 505, 507, 508, 510, 511, 512, 513, 514, 517, 519, 522, 523, 524, 525, 527, 529, 530,
        531, 534, 536, 538, 541, 544, 545, 546, 548, 549, 550, 553, 555, 556, 559, 560, 561, 562, 563, 565, 566,
        567, 570, 571, 573, 574, 575, 576, 577, 578, 580, 581, 582, 583, 584, 585, 586, 587, 588, 589, 591, 592,
        595, 596, 597, 598, 599, 600, 606, 609, 611, 612, 613, 614, 615, 617, 618, 619, 620, 621, 622, 623, 624,
        625, 626, 627, 628, 629, 631, 633, 634, 635, 636, 637, 641, 643, 645, 646, 648, 649, 651, 652, 654, 655,
        656, 658, 664, 665, 666, 667, 668, 670, 675, 678, 679, 681, 682, 683, 684, 687, 688, 690, 691, 692, 695,
        697, 700, 701, 702, 703, 705, 707, 709, 710, 712, 715, 716, 717, 719, 720, 721, 722, 723, 725, 727,
    ], "9dfa84a7e53987346987e507d8b9191f2767f9881cd672e556fd19c7af2d2641"),
    "dev": ("eval", [
        1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 21, 22, 23, 24, 25, 26, 30, 32, 33, 34, 35, 37,
        38, 40, 42, 47, 48, 49, 52, 53, 54, 56, 57, 58, 59, 60, 61, 62, 66, 67, 68, 69, 70, 72, 74, 78, 79, 80,
        81, 82, 83, 84, 85, 86, 88, 89, 90, 91, 92, 93, 95, 97, 98, 100, 101, 103, 105, 108, 109, 113, 114, 117,
        122, 123, 125, 127, 128, 129, 133, 134, 137, 139, 143, 144, 145, 147, 149, 150, 151, 152, 154, 155, 157,
        158, 160, 161, 164, 165, 166, 167, 168, 169, 173, 174, 175, 176, 177, 179, 180, 181, 182, 183, 184, 185,
        186, 187, 190, 192, 194, 196, 199, 201, 202, 203, 205, 206, 208, 209, 211, 213, 215, 216, 218, 219, 220,
        221, 222, 223, 226, 228, 231, 233, 234, 235, 237, 239, 240, 241, 242, 243, 244, 245, 247, 248, 249, 250,
        254, 255, 256, 257, 258, 260, 261, 262, 263, 264, 265, 267, 270, 271, 273, 274, 278, 279, 280, 281, 283,
        285, 286, 287, 288, 289, 290, 292, 299, 300, 301, 302, 303, 305, 306, 308, 309, 310, 311, 314, 315, 316,
        317, 319, 320, 321, 322, 323, 325, 327, 328, 329, 331, 333, 334, 337, 338, 339, 342, 346, 350, 352, 353,
        354, 355, 356, 357, 358, 359, 360, 361, 362,
    ], "255e45c1731c159b55bc260411d9f7782aecf03aff0d18ed41625a3b7ded7989"),
    "heldout": ("test", [
        1, 2, 3, 6, 8, 9, 10, 12, 13, 17, 18, 19, 21, 22, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37,
        38, 39, 42, 43, 45, 46, 47, 49, 50, 53, 54, 55, 56, 59, 60, 62, 64, 65, 68, 70, 72, 73, 75, 76, 78, 79,
        80, 81, 83, 84, 85, 87, 88, 89, 90, 92, 93, 94, 96, 97, 99, 100, 101, 104, 105, 109, 110, 111, 112, 113,
        114, 115, 116, 117, 118, 119, 121, 122, 123, 124, 126, 128, 129, 130, 131, 132, 135, 137, 138, 140, 143,
        147, 148, 151, 152, 153, 154, 155, 156, 157, 158, 159, 160, 161, 162, 163, 164, 165, 167, 168, 169, 171,
        172, 173, 174, 176, 177, 179, 180, 183, 186, 188, 190, 191, 192, 194, 195, 200, 202, 203, 204, 205, 206,
        207, 209, 210, 211, 212, 213, 215, 216, 219, 220, 221, 225, 227, 228, 229, 230, 231, 232, 233, 234, 236,
        238, 239, 240, 241, 243, 244, 248, 249, 254, 255, 256, 257, 259, 261, 262, 263, 264, 265, 266, 268, 269,
        270, 274, 276, 277, 278, 279, 283, 285, 286, 287, 288, 289, 290, 292, 294, 296, 298, 299, 300, 301, 302,
        303, 308, 309, 310, 311, 314, 316, 317, 318, 319, 321, 322, 323, 326, 329, 330, 331, 332, 333, 334, 335,
        336, 338, 340, 341, 343, 344, 346, 349, 350, 351, 353, 355, 357, 358, 360, 363, 365,
    ], "678b52c167552ab6170163b6594b87a68d3972aa47ef8ac18d87209a2b7cac27"),
}


def clean(text: str) -> str:
    """The row's text without Weibo emoticon codes and surrounding blanks."""
    return EMOTICON.sub("", text).strip()


def usable(text: str) -> str | None:
    """``None`` when the cleaned text is a short speech-like sentence, else why it is not."""
    if not 4 <= len(text) <= MAX_CHARS:
        return f"{len(text)} characters (allowed 4-{MAX_CHARS})"
    if any(mark in text for mark in ("@", "#", "http", "【")):
        return "a mention, hashtag, link or bracketed headline"
    if any(ord(ch) > 0xFFFF or unicodedata.category(ch) == "So" for ch in text):
        return "an emoji or pictograph"
    letters = [ch for ch in text if ch.isalpha()]
    cjk = sum("\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" for ch in letters)
    if not letters or cjk / len(letters) < 0.5:
        return "fewer than half of its letters are Chinese characters"
    return None


def read_source(path: Path) -> dict[int, tuple[str, str]]:
    """``{id: (content, label)}`` from one EWECT JSON file (the whole file or any subset of its rows)."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"error: cannot read {path} as an EWECT JSON list ({exc})") from None
    return {int(r["id"]): (r["content"], r["label"]) for r in rows}


def build(sources: dict[str, dict[int, tuple[str, str]]]) -> dict[str, list[tuple[int, str, str]]]:
    """``{split: [(id, label, text), ...]}``; one-line errors for a missing, unusable or duplicate row."""
    out: dict[str, list[tuple[int, str, str]]] = {}
    seen: dict[str, str] = {}
    for split, (key, ids, _) in SPLITS.items():
        rows = []
        for i in ids:
            if i not in sources[key]:
                raise SystemExit(f"error: {FILES[key]} has no row with id {i}; is it the file from {SOURCE_REPO}?")
            content, label = sources[key][i]
            text = clean(content)
            why = usable(text)
            if why is not None:
                raise SystemExit(f"error: {FILES[key]} id {i} is not usable: {why}")
            if text in seen:
                raise SystemExit(f"error: {FILES[key]} id {i} repeats a row of {seen[text]}")
            seen[text] = split
            rows.append((i, LABEL_MAP[label], text))
        out[split] = rows
    return out


def tsv(rows: list[tuple[int, str, str]]) -> str:
    """``label<TAB>text<TAB>id`` lines, the form the training recipe reads."""
    return "".join(f"{label}\t{text}\t{i}\n" for i, label, text in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python scripts/zh_text/build_set.py", description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, required=True, help=f"folder holding {' and '.join(FILES.values())}")
    ap.add_argument("--out", type=Path, required=True, help="folder for the splits (outside the repository: the rows "
                    "are research-only)")
    ap.add_argument("--no-verify", action="store_true", help="write even if a split's SHA-256 differs")
    args = ap.parse_args(argv)
    missing = [name for name in FILES.values() if not (args.source / name).is_file()]
    if missing:
        print(f"error: {args.source} lacks {', '.join(missing)} (from {SOURCE_REPO} at {SOURCE_COMMIT}, data/raw/)",
              file=sys.stderr)
        return 2
    splits = build({key: read_source(args.source / name) for key, name in FILES.items()})
    args.out.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        text = tsv(rows)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if digest != SPLITS[split][2] and not args.no_verify:
            print(f"error: the {split} rows differ from the ones the shipped head used (sha256 {digest[:12]}…); "
                  "another copy of the source? --no-verify writes them anyway", file=sys.stderr)
            return 1
        (args.out / f"{split}.tsv").write_text(text, encoding="utf-8")
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows((t, label) for _, label, t in rows)
        (args.out / f"{split}.csv").write_text(buf.getvalue(), encoding="utf-8")
        counts = {label: sum(r[1] == label for r in rows) for label in sorted(LABEL_MAP.values())}
        print(f"{split}: {len(rows)} rows {counts} -> {args.out / (split + '.tsv')}, .csv (eval-model manifest)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
