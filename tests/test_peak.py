from __future__ import annotations

import numpy as np

from emollama.perception.peak import select_peak, smoothed_total

NAMES = ("AU12", "AU06", "AU45")


def curve(totals: list[float], blink: list[float] | None = None) -> np.ndarray:
    arr = np.zeros((len(totals), 3))
    arr[:, 0] = totals
    if blink is not None:
        arr[:, 2] = blink
    return arr


def test_peak_is_the_largest_total():
    inten = curve([0, 1, 2, 4, 2, 1, 0])
    assert select_peak(inten, np.ones(7, bool), NAMES) == 3


def test_frames_without_a_confident_face_are_never_the_peak():
    inten = curve([0, 1, 5, 1, 0, 2, 2.5, 2, 0])  # frame 2 is a failed track with garbage AUs
    conf = np.ones(9, bool)
    conf[2] = False
    assert select_peak(inten, conf, NAMES) == 6


def test_a_single_spike_loses_to_a_sustained_expression():
    inten = curve([0, 0, 3.2, 0, 0, 0, 2.5, 3.0, 2.5, 0])
    assert select_peak(inten, np.ones(10, bool), NAMES) == 7


def test_blinks_do_not_count():
    inten = curve([1, 1, 1, 2, 1, 1], blink=[0, 5, 5, 0, 0, 0])
    assert select_peak(inten, np.ones(6, bool), NAMES) == 3


def test_no_confident_frame_means_no_peak():
    assert select_peak(curve([1, 2, 3]), np.zeros(3, bool), NAMES) is None
    assert select_peak(np.zeros((0, 3)), np.zeros(0, bool), NAMES) is None


def test_smoothing_ignores_non_confident_neighbours():
    conf = np.array([True, False, True, True])
    s = smoothed_total(curve([1, 100, 3, 5]), conf, NAMES)
    assert np.isnan(s[1])
    assert s[0] == 1.0 and s[2] == 4.0 and s[3] == 4.0
