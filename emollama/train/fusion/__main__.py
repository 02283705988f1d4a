"""Rebuild the Conv-Attention fusion head (``emollama/assets/heads/fusion/``).

    OMP_NUM_THREADS=2 python -m emollama.train.fusion --clips ../shared/data/clips_ravdess/labels.csv \\
        --data ../shared/data --cv --out emollama/assets/heads/fusion

``--cv`` first reports the leave-one-group-out accuracy on the clips (see
:mod:`emollama.train.fusion.recipe`); ``--out`` trains and saves the shipped head; ``--report``
writes the whole report (per-clip predictions included) as JSON; ``--compare-pooling`` adds the
face pooling replays of :mod:`emollama.train.fusion.pooling`; ``--modalities face`` trains and
scores a head that reads only those modalities (the learned temporal pooling of the face, alone).
The per-clip perception and the pairs' head outputs are cached under ``--work``: a rerun after a
kill redoes only what is missing (delete ``--work`` after changing the perception code).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
from pathlib import Path

from emollama.files import atomic_write_text
from emollama.recognize.conv_attention import ConvAttentionConfig
from emollama.recognize.fusion_inputs import MODALITIES
from emollama.train.fusion.data import PAIRS_PER_LABEL, clip_samples, pair_samples, restrict
from emollama.train.fusion.pooling import compare_pooling
from emollama.train.fusion.recipe import TrainSettings, run


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m emollama.train.fusion", description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=Path, default=Path("../shared/data/clips_ravdess/labels.csv"))
    ap.add_argument("--data", type=Path, default=Path("../shared/data"), help="holds fer2013/, emodb/, text/")
    ap.add_argument("--work", type=Path, default=Path("/tmp/emollama_fusion"))
    ap.add_argument("--out", type=Path, default=None, help="write the trained head here")
    ap.add_argument("--cv", action="store_true", help="cross-validate on the clips first")
    ap.add_argument("--report", type=Path, default=None, help="write the JSON report here")
    ap.add_argument("--no-pairs", action="store_true", help="train on the clips only")
    ap.add_argument("--pseudo", type=Path, default=None,
                    help="a pseudo-label manifest (emollama pseudo-label): training data of every fold, never scored")
    ap.add_argument("--no-words", action="store_true",
                    help="withhold the clips' transcripts (default: the speech-recognised words, as analyze sees them)")
    ap.add_argument("--modalities", default=",".join(MODALITIES),
                    help=f"comma-separated subset of {','.join(MODALITIES)} the head may read")
    ap.add_argument("--compare-pooling", action="store_true",
                    help="also replay every face pooling method on the clips (face alone and hand-set fusion)")
    ap.add_argument("--pairs-per-label", type=int, default=PAIRS_PER_LABEL)
    ap.add_argument("--epochs", type=int, default=TrainSettings.epochs)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    modalities = tuple(m.strip() for m in args.modalities.split(",") if m.strip())
    if not modalities or set(modalities) - set(MODALITIES):
        ap.error(f"--modalities: choose among {','.join(MODALITIES)}")
    if args.out is not None and len(modalities) < len(MODALITIES):
        ap.error("--modalities is for cross-validation only: a saved head would read every modality at inference")
    log = functools.partial(print, flush=True)
    config = ConvAttentionConfig()
    settings = TrainSettings(epochs=args.epochs, seed=args.seed)
    clips, failed = clip_samples(args.clips, args.work / "clips", words=not args.no_words, log=log)
    for f in failed:
        log(f"skipped {f['path']}: {f['reason']}")
    pairs = [] if args.no_pairs else pair_samples(args.data, args.work / "pairs", config.labels, seed=args.seed,
                                                  per_label=args.pairs_per_label, log=log)
    note = {"clips": str(args.clips), "n_clips": len(clips), "clips_failed": failed, "n_pairs": len(pairs),
            "pairs": "FER2013 val faces x EmoDB (leave-one-speaker-out voice head) x MELD dev texts, same label",
            "words_from_clips": not args.no_words, "modalities": list(modalities)}
    extra: list = []
    if args.pseudo is not None:
        extra, failed_pseudo = clip_samples(args.pseudo, args.work / "clips", words=not args.no_words, log=log)
        scored = {(args.clips.parent / s.source).resolve() for s in clips}
        overlap = [s.source for s in extra if (args.pseudo.parent / s.source).resolve() in scored]
        # A dev take among the pseudo-labels would train the fold that scores it: left out.
        extra = [dataclasses.replace(s, group="pseudo") for s in extra
                 if (args.pseudo.parent / s.source).resolve() not in scored]
        note.update(pseudo=str(args.pseudo), n_pseudo=len(extra), pseudo_failed=failed_pseudo,
                    pseudo_dropped_as_dev_clips=overlap)
    pooling = compare_pooling(clips) if args.compare_pooling else None
    if len(modalities) < len(MODALITIES):
        clips, pairs, extra = (restrict(x, modalities) for x in (clips, pairs, extra))
    report = run(clips, pairs, args.out, config, settings, cv=args.cv, data_note=note, log=log, extra=extra)
    if pooling is not None:
        report["face_pooling_replay"] = pooling
        log(json.dumps({m: {k: v["accuracy"] for k, v in r.items()} for m, r in pooling.items()
                        if isinstance(r, dict)}, indent=1))
    if args.report is not None:
        atomic_write_text(args.report, json.dumps(report, indent=2) + "\n")
    log(f"done in {report['seconds']} s")


if __name__ == "__main__":
    main()
