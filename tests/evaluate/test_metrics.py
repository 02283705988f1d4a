"""Every metric against scikit-learn or a hand count."""

from __future__ import annotations

import random

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, mean_squared_error, precision_score, recall_score
from sklearn.metrics import confusion_matrix as sk_confusion

from emollama.evaluate.metrics import (
    UNPARSED,
    classification_scores,
    confusion_matrix,
    jaccard,
    mer_multi_score,
    set_scores,
)
from emollama.evaluate.metrics import mean_squared_error as our_mse

MER6 = ("neutral", "angry", "happy", "sad", "worried", "surprise")


def _random_case(seed: int, n: int = 80, p_unparsed: float = 0.1):
    rng = random.Random(seed)
    present = MER6[: rng.randint(2, 6)]
    y_true = [rng.choice(present) for _ in range(n)]
    y_pred = [UNPARSED if rng.random() < p_unparsed else rng.choice(MER6) for _ in range(n)]
    return y_true, y_pred


@pytest.mark.parametrize("seed", range(12))
def test_against_sklearn(seed: int) -> None:
    y_true, y_pred = _random_case(seed)
    s = classification_scores(y_true, y_pred, MER6)
    present = [c for c in MER6 if c in y_true]
    assert s.accuracy == pytest.approx(accuracy_score(y_true, y_pred))
    kw = {"labels": list(MER6), "zero_division": 0}
    assert s.weighted_f1 == pytest.approx(f1_score(y_true, y_pred, average="weighted", **kw))
    assert s.weighted_precision == pytest.approx(precision_score(y_true, y_pred, average="weighted", **kw))
    assert s.weighted_recall == pytest.approx(recall_score(y_true, y_pred, average="weighted", **kw))
    assert s.macro_f1 == pytest.approx(
        f1_score(y_true, y_pred, average="macro", labels=present, zero_division=0)
    )
    assert s.uar == pytest.approx(
        recall_score(y_true, y_pred, average="macro", labels=present, zero_division=0)
    )
    assert s.war == pytest.approx(s.accuracy)
    per_p = precision_score(y_true, y_pred, average=None, **kw)
    per_r = recall_score(y_true, y_pred, average=None, **kw)
    per_f = f1_score(y_true, y_pred, average=None, **kw)
    for i, c in enumerate(s.per_class):
        assert (c.precision, c.recall, c.f1) == pytest.approx((per_p[i], per_r[i], per_f[i]))
    cm = np.array(s.confusion)
    assert (cm[:, : len(MER6)] == sk_confusion(y_true, y_pred, labels=list(MER6))).all()
    assert cm.sum() == len(y_true)
    pairs = list(zip(y_true, y_pred, strict=True))
    assert (cm[:, -1] == [sum(1 for t, p in pairs if t == lab and p == UNPARSED) for lab in MER6]).all()


def test_hand_computed_small_case() -> None:
    # 4 happy (3 right, 1 → sad), 2 sad (1 right, 1 unparsed).
    y_true = ["happy"] * 4 + ["sad"] * 2
    y_pred = ["happy", "happy", "happy", "sad", "sad", UNPARSED]
    s = classification_scores(y_true, y_pred, ("happy", "sad", "angry"))
    assert s.accuracy == pytest.approx(4 / 6)
    happy, sad, angry = s.per_class
    assert (happy.precision, happy.recall) == pytest.approx((1.0, 0.75))
    assert (sad.precision, sad.recall) == pytest.approx((0.5, 0.5))
    assert angry.support == 0 and angry.f1 == 0
    f1_h, f1_s = 2 * 0.75 / 1.75, 0.5
    assert s.weighted_f1 == pytest.approx((4 * f1_h + 2 * f1_s) / 6)
    assert s.macro_f1 == pytest.approx((f1_h + f1_s) / 2)  # angry has no reference → not averaged
    assert s.uar == pytest.approx((0.75 + 0.5) / 2)
    assert s.confusion == ((3, 1, 0, 0), (0, 1, 0, 1), (0, 0, 0, 0))


def test_all_wrong_and_all_right() -> None:
    assert classification_scores(["a", "b"], ["a", "b"], ("a", "b")).weighted_f1 == 1.0
    s = classification_scores(["a", "b"], [UNPARSED, UNPARSED], ("a", "b"))
    assert (s.accuracy, s.weighted_f1, s.uar) == (0.0, 0.0, 0.0)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="not in the label set"):
        confusion_matrix(["fear"], ["fear"], ("happy",))
    with pytest.raises(ValueError, match="2 references but 1"):
        confusion_matrix(["a", "a"], ["a"], ("a",))
    with pytest.raises(ValueError, match="no samples"):
        classification_scores([], [], ("a",))


def test_mse_and_multi_score() -> None:
    t, p = [1.0, -2.0, 0.5], [0.0, -1.0, 0.5]
    assert our_mse(t, p) == pytest.approx(mean_squared_error(t, p)) == pytest.approx(2 / 3)
    assert mer_multi_score(0.8, 0.4) == pytest.approx(0.7)


def test_set_scores_and_jaccard() -> None:
    s = set_scores({"happy", "grateful", "shy"}, {"happy", "excited"})
    assert (s.accuracy, s.recall) == (0.5, pytest.approx(1 / 3))
    assert set_scores({"a"}, set()) == set_scores({"a"}, set())
    assert set_scores({"a"}, set()).accuracy == 0.0
    with pytest.raises(ValueError):
        set_scores(set(), {"a"})
    assert jaccard({"a", "b"}, {"b", "c"}) == pytest.approx(1 / 3)
    assert jaccard(set(), set()) == 1.0
