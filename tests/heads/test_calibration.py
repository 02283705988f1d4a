"""Temperature scaling recovers a known temperature and lowers ECE."""

from __future__ import annotations

import numpy as np
import pytest

from emollama.heads.calibration import expected_calibration_error, fit_temperature, nll, softmax


def _sample(t_true: float, n: int = 4000, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z / t_true); the model reports z, so it is mis-calibrated by t_true."""
    rng = np.random.default_rng(1)
    z = rng.normal(0, 3, (n, k))
    p = softmax(z / t_true)
    y = np.array([rng.choice(k, p=row) for row in p])
    return z, y


def test_recovers_the_temperature_and_reduces_ece():
    z, y = _sample(2.5)
    t = fit_temperature(z, y)
    assert t == pytest.approx(2.5, rel=0.15)
    assert nll(z, y, t) < nll(z, y, 1.0)
    assert expected_calibration_error(softmax(z / t), y) < 0.5 * expected_calibration_error(softmax(z), y)


def test_calibrated_model_keeps_temperature_near_one():
    z, y = _sample(1.0)
    assert fit_temperature(z, y) == pytest.approx(1.0, rel=0.15)
