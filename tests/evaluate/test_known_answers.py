"""Known answers: numbers published (or hand-computed) by others, reproduced by the code `emollama evaluate` runs.

If one of these fails, our numbers stopped being comparable with the literature.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from emollama.evaluate import evaluate_classification, read_table

#: Confusion matrix of the released Emotion-LLaMA on MER2024-NOISE, posted by its maintainer
#: (ZebangCheng/Emotion-LLaMA issue #37); rows = reference, columns = prediction.
MER2024_NOISE_LABELS = ("angry", "happy", "neutral", "sad", "surprise", "worried")
MER2024_NOISE_MATRIX = (
    (224, 0, 5, 2, 4, 1),
    (1, 213, 16, 0, 2, 1),
    (23, 24, 128, 17, 11, 29),
    (3, 2, 5, 284, 0, 1),
    (6, 1, 2, 0, 42, 4),
    (2, 0, 6, 2, 3, 106),
)


def _write_pairs(tmp_path: Path, rows: list[tuple[str, str, str, float | None, float | None]]) -> tuple[Path, Path]:
    """Reference and prediction CSVs from (name, reference, prediction, ref valence, pred valence) rows."""
    with_valence = rows[0][3] is not None
    ref, pred = tmp_path / "refs.csv", tmp_path / "preds.csv"
    head = "name,label,valence\n" if with_valence else "name,label\n"
    ref_lines, pred_lines = [head], [head]
    for name, truth, guess, v_ref, v_pred in rows:
        tail_ref = f",{v_ref}" if with_valence else ""
        tail_pred = f",{v_pred}" if with_valence else ""
        ref_lines.append(f"{name},{truth}{tail_ref}\n")
        pred_lines.append(f"{name},{guess}{tail_pred}\n")
    ref.write_text("".join(ref_lines), encoding="utf-8")
    pred.write_text("".join(pred_lines), encoding="utf-8")
    return ref, pred


def _classification(tmp_path: Path, ref: Path, pred: Path) -> dict:
    """What ``emollama evaluate classification`` writes to metrics.json, without drawing its plots (slow)."""
    refs = read_table(ref, role="references")
    preds = read_table(pred, role="predictions")
    return evaluate_classification(refs, preds).to_dict()


def test_mer2024_noise_emotion_llama_matrix(tmp_path: Path) -> None:
    """The maintainer's weighted F1 0.8458065521840188, rebuilt from the posted confusion matrix."""
    rows = []
    for i, truth in enumerate(MER2024_NOISE_LABELS):
        for j, guess in enumerate(MER2024_NOISE_LABELS):
            for k in range(MER2024_NOISE_MATRIX[i][j]):
                rows.append((f"s{i}{j}_{k:03d}", truth, guess, None, None))
    assert len(rows) == 1170
    metrics = _classification(tmp_path, *_write_pairs(tmp_path, rows))
    assert metrics["label_set"] == "mer6"
    for mode in ("strict", "official"):  # plain labels: both parsings must agree
        scores = metrics[mode]
        assert scores["n"] == 1170
        assert scores["weighted_f1"] == pytest.approx(0.8458065521840188, abs=1e-12)
        assert scores["accuracy"] == pytest.approx(0.852137, abs=5e-7)
        assert scores["macro_f1"] == pytest.approx(0.822051, abs=5e-7)
        assert scores["uar"] == pytest.approx(0.838691, abs=5e-7)
        assert scores["war"] == pytest.approx(997 / 1170, abs=1e-12)


def test_mer2023_multi_score_hand_computed(tmp_path: Path) -> None:
    """MER2023 MER-MULTI = weighted F1 − 0.25 × valence MSE, on four samples counted by hand.

    happy: 2 hits of 3 predicted, support 2 → F1 0.8; sad: F1 1; angry: never predicted → F1 0.
    Weighted F1 = (2·0.8 + 1 + 0)/4 = 0.65. Valence errors 0.5, 0, 0, 1 → MSE 0.3125.
    MULTI = 0.65 − 0.078125 = 0.571875.
    """
    rows = [
        ("a", "happy", "happy", 1.0, 0.5),
        ("b", "sad", "sad", -2.0, -2.0),
        ("c", "angry", "happy", -1.0, -1.0),
        ("d", "happy", "happy", 2.0, 1.0),
    ]
    metrics = _classification(tmp_path, *_write_pairs(tmp_path, rows))
    assert metrics["strict"]["weighted_f1"] == pytest.approx(0.65, abs=1e-12)
    assert metrics["valence"]["mse"] == pytest.approx(0.3125, abs=1e-12)
    assert metrics["valence"]["multi_strict"] == pytest.approx(0.571875, abs=1e-12)
    assert metrics["valence"]["multi_official"] == pytest.approx(0.571875, abs=1e-12)
