"""The multilingual text recipe's choice: Chinese rows may not cost the English dev scores (issue 20 §4)."""

from __future__ import annotations

import numpy as np

from emollama.train.heads.text_linear import train_head


def _rows(rng: np.random.Generator, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Separable 7-class toy features; ``shift`` moves the whole block, as a second language does in e5."""
    y = rng.integers(0, 7, n)
    x = rng.normal(0, 1, (n, 16)) + np.eye(7, 16)[y] * 3 + shift
    return x / np.linalg.norm(x, axis=1, keepdims=True), y


def test_chinese_rows_enter_only_when_english_dev_holds():
    rng = np.random.default_rng(0)
    x_en, y_en = _rows(rng, 700, 0.0)
    x_zh, y_zh = _rows(rng, 140, 1.5)
    dev = {"goemotions": _rows(rng, 200, 0.0), "meld": _rows(rng, 200, 0.0), "zh": _rows(rng, 200, 1.5)}
    zh_rows = np.r_[np.zeros(len(x_en), bool), np.ones(len(x_zh), bool)]
    head, report = train_head("toy", np.r_[x_en, x_zh], np.r_[y_en, y_zh], dev, {"en": 700, "zh": 140}, 0.0,
                              zh_rows=zh_rows, zh_weights=(3.0,))
    ref, chosen = report["english_only_reference"], report["selected"]
    assert ref["zh_weight"] == 0.0 and len(report["grid"]) == 20
    for key in ("goemotions_dev_macro_f1", "meld_dev_weighted_f1"):
        assert chosen[key] >= ref[key]
    assert chosen["zh_dev_macro_f1"] >= ref["zh_dev_macro_f1"]
    assert head.meta["train"]["zh_weight"] == chosen["zh_weight"] and set(head.meta["dev"]) == {
        "goemotions_dev_macro_f1", "meld_dev_weighted_f1", "zh_dev_macro_f1"}


def test_without_chinese_rows_the_grid_is_the_english_only_one():
    rng = np.random.default_rng(1)
    x, y = _rows(rng, 500, 0.0)
    dev = {"goemotions": _rows(rng, 150, 0.0), "meld": _rows(rng, 150, 0.0)}
    head, report = train_head("toy", x, y, dev, {"en": 500}, 0.0)
    assert len(report["grid"]) == 10 and "zh_weight" not in report["selected"] and "train" not in head.meta
