"""AU geometry: move landmarks the way a muscle would and check the right AU (and only it) rises."""

from __future__ import annotations

import numpy as np
import pytest

from emollama.perception import action_units as A

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def neutral() -> np.ndarray:
    """A real 478-point mesh: MediaPipe on the example clip's first frame (pixel units)."""
    from mediapipe.python.solutions import face_mesh

    from tests.clips import example_frames

    frame = example_frames(limit=1)[0]
    h, w = frame.shape[:2]
    with face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True) as mesh:
        res = mesh.process(frame)
    assert res.multi_face_landmarks, "the example clip must show a face"
    return np.array([(p.x * w, p.y * h, p.z * w) for p in res.multi_face_landmarks[0].landmark])


def iod_px(lm: np.ndarray) -> float:
    r = lm[[A.R_EYE_OUT, A.R_EYE_IN]].mean(0)
    l_ = lm[[A.L_EYE_OUT, A.L_EYE_IN]].mean(0)
    return float(np.linalg.norm(l_ - r))


def move(lm: np.ndarray, idx: list[int], dx: float = 0.0, dy_up: float = 0.0) -> np.ndarray:
    """Shift landmarks by fractions of the inter-ocular distance (dy_up > 0 = up in the image)."""
    out = lm.copy()
    d = iod_px(lm)
    out[idx, 0] += dx * d
    out[idx, 1] -= dy_up * d
    return out


def intensities(neutral: np.ndarray, moved: np.ndarray) -> dict[str, float]:
    """AUs of `moved` against a baseline built from a still sequence of the neutral face."""
    seq = np.stack([neutral] * 8)
    base = A.estimate_baseline(A.geometric_features(A.face_frame(seq)[0]))
    au = A.au_intensities(A.geometric_features(A.face_frame(moved[None])[0]), base)[0]
    return dict(zip(A.AU_NAMES, au, strict=True))


def others_quiet(au: dict[str, float], allowed: set[str], limit: float = 0.5) -> list[str]:
    return [k for k, v in au.items() if k not in allowed and v > limit]


def test_neutral_face_has_no_action_units(neutral):
    au = intensities(neutral, neutral)
    assert max(au.values()) == pytest.approx(0.0, abs=1e-6)


def test_mouth_corners_up_raise_au12_only(neutral):
    au = intensities(neutral, move(move(neutral, [A.MOUTH_R], dx=-0.03, dy_up=0.08), [A.MOUTH_L], dx=0.03, dy_up=0.08))
    assert au["AU12"] > 2.0
    assert au["AU15"] == 0.0
    assert others_quiet(au, {"AU12", "AU20", "AU14"}) == []


def test_mouth_corners_down_raise_au15(neutral):
    au = intensities(neutral, move(neutral, [A.MOUTH_R, A.MOUTH_L], dy_up=-0.07))
    assert au["AU15"] > 1.5
    assert au["AU12"] == 0.0


def test_brows_together_and_down_raise_au04(neutral):
    moved = move(neutral, list(A.R_BROW_IN), dx=0.06, dy_up=-0.03)
    moved = move(moved, list(A.L_BROW_IN), dx=-0.06, dy_up=-0.03)
    au = intensities(neutral, moved)
    assert au["AU04"] > 2.0
    assert au["AU01"] == 0.0 and au["AU02"] == 0.0


def test_inner_brows_up_raise_au01(neutral):
    au = intensities(neutral, move(neutral, [*A.R_BROW_IN, *A.L_BROW_IN], dy_up=0.1))
    assert au["AU01"] > 1.5
    assert au["AU04"] == 0.0


def test_jaw_down_raises_au26_and_au25(neutral):
    lower = [A.CHIN, A.LIP_LO_IN, A.LIP_LO_OUT]
    # The mouth corners sit between the lips and travel part of the way with the lower lip.
    moved = move(move(neutral, lower, dy_up=-0.3), [A.MOUTH_R, A.MOUTH_L], dy_up=-0.3 * A.CORNER_REFERENCE)
    au = intensities(neutral, moved)
    assert au["AU26"] > 2.0
    assert au["AU25"] > 2.0
    assert au["AU12"] == 0.0 and au["AU15"] == 0.0


def test_closed_eyes_are_a_blink_not_lid_tightening(neutral):
    moved = move(neutral, [A.R_LID_UP], dy_up=-(neutral[A.R_LID_UP, 1] - neutral[A.R_LID_LO, 1]) / -iod_px(neutral))
    moved = move(moved, [A.L_LID_UP], dy_up=-(neutral[A.L_LID_UP, 1] - neutral[A.L_LID_LO, 1]) / -iod_px(neutral))
    au = intensities(neutral, moved)
    assert au["AU45"] > 4.0
    assert au["AU07"] < 0.5


def _rotate(lm: np.ndarray, yaw_deg: float, roll_deg: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    c = lm.mean(axis=0)
    y, r = np.radians(yaw_deg), np.radians(roll_deg)
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    out = (lm - c) @ (rz @ ry).T * scale + c
    out[:, 0] += shift[0]
    out[:, 1] += shift[1]
    return out


def test_features_do_not_change_with_head_pose_size_or_position(neutral):
    f0 = A.geometric_features(A.face_frame(neutral[None])[0])[0]
    f1 = A.geometric_features(A.face_frame(_rotate(neutral, 20, 15, 1.7, (40, -25))[None])[0])[0]
    assert np.allclose(f0, f1, atol=2e-3)


def test_head_pose_is_recovered(neutral):
    base = A.head_pose_degrees(A.face_frame(neutral[None])[1][0])
    turned = A.head_pose_degrees(A.face_frame(_rotate(neutral, 0, 20, 1.0, (0, 0))[None])[1][0])
    assert abs(abs(turned["roll"] - base["roll"]) - 20) < 1.0


def test_identity_does_not_leak_a_face_with_high_brows_has_no_au01(neutral):
    """A person whose brows sit high in every frame is not 'raising' them."""
    high = move(neutral, [*A.R_BROW_IN, *A.L_BROW_IN, *A.R_BROW_OUT, *A.L_BROW_OUT], dy_up=0.12)
    seq = np.stack([high] * 10)
    feats = A.geometric_features(A.face_frame(seq)[0])
    au = A.au_intensities(feats, A.estimate_baseline(feats))
    assert au[:, A.AU_NAMES.index("AU01")].max() == 0.0
    assert au[:, A.AU_NAMES.index("AU02")].max() == 0.0


def test_baseline_comes_from_least_expressive_frames(neutral):
    smile = move(move(neutral, [A.MOUTH_R], dy_up=0.08), [A.MOUTH_L], dy_up=0.08)
    seq = np.stack([neutral] * 6 + [smile] * 3)
    feats = A.geometric_features(A.face_frame(seq)[0])
    base = A.estimate_baseline(feats)
    assert base.source == "own_least_expressive"
    au = A.au_intensities(feats, base)[:, A.AU_NAMES.index("AU12")]
    assert np.all(au[:6] == 0.0) and np.all(au[6:] > 2.0)


def test_still_image_falls_back_to_population_prior(neutral):
    feats = A.geometric_features(A.face_frame(neutral[None])[0])
    assert A.estimate_baseline(feats).source == "population_prior"


def test_still_image_aus_read_a_frown_against_the_population_prior(neutral):
    """One still, no resting frames: the population prior is the baseline (the example face smiles)."""
    frown = move(move(neutral, [A.MOUTH_R], dy_up=-0.12), [A.MOUTH_L], dy_up=-0.12)
    rest, _ = A.still_image_aus(neutral)
    frowning, asymmetry = A.still_image_aus(frown)
    assert set(frowning) == set(A.AU_NAMES)
    assert frowning["AU12"] < rest["AU12"] - 2.0 and np.isfinite(asymmetry)


def test_one_sided_corner_raise_is_reported_as_asymmetry(neutral):
    seq = np.stack([neutral] * 8)
    base = A.estimate_baseline(A.geometric_features(A.face_frame(seq)[0]))
    one_side = move(neutral, [A.MOUTH_L], dy_up=0.08)
    asym = A.au_asymmetry(A.geometric_features(A.face_frame(one_side[None])[0]), base)[0]
    both = move(move(neutral, [A.MOUTH_R], dy_up=0.08), [A.MOUTH_L], dy_up=0.08)
    sym = A.au_asymmetry(A.geometric_features(A.face_frame(both[None])[0]), base)[0]
    assert abs(asym) > 0.02
    assert sym == 0.0


def test_chin_raiser_needs_closed_lips(neutral):
    """An open mouth shortens the chin-to-lip distance too; that is not AU17."""
    opened = move(move(neutral, [A.LIP_LO_IN, A.LIP_LO_OUT], dy_up=-0.3), [A.CHIN], dy_up=-0.2)
    assert intensities(neutral, opened)["AU17"] == 0.0
    pushed = move(neutral, [A.CHIN], dy_up=0.08)  # closed lips, chin pushed up
    assert intensities(neutral, pushed)["AU17"] > 2.0
