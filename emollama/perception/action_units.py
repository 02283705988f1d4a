"""Facial Action Unit intensities (0-5) from MediaPipe's 478-point face mesh.

No AU detector ships offline (py-feat, LibreFace and OpenFace all download weights), so AUs are
measured from geometry, in three steps that are each a pure function:

1. :func:`face_frame` - rotate every frame's landmarks into a head-centred frame (x along the eye
   line, y up the nose bridge, z towards the viewer) and divide by the inter-ocular distance, so
   head pose, distance to the camera and image size drop out.
2. :func:`geometric_features` - a handful of distances and heights in that frame (brow height,
   eye aperture, mouth-corner height, lip gap, jaw opening ...).
3. :func:`au_intensities` - each AU is a gain times the feature's change from the face's *own*
   baseline (:func:`estimate_baseline`: the least-expressive frames of the clip), minus a
   dead-zone at the landmark noise level. Working on changes from the same face's baseline is
   what keeps identity (a naturally high brow, a downturned mouth) out of the AUs.

The gains map typical maximal displacements to about 4; they are hand-set, documented, and only
the relative ordering of frames and AUs is meaningful (these are not FACS-coder intensities).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AU_NAMES: tuple[str, ...] = (
    "AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12",
    "AU14", "AU15", "AU17", "AU20", "AU23", "AU25", "AU26", "AU45",
)

AU_DESCRIPTIONS: dict[str, str] = {
    "AU01": "inner brow raiser", "AU02": "outer brow raiser", "AU04": "brow lowerer",
    "AU05": "upper lid raiser", "AU06": "cheek raiser", "AU07": "lid tightener",
    "AU09": "nose wrinkler", "AU10": "upper lip raiser", "AU12": "lip corner puller",
    "AU14": "dimpler", "AU15": "lip corner depressor", "AU17": "chin raiser",
    "AU20": "lip stretcher", "AU23": "lip tightener", "AU25": "lips part", "AU26": "jaw drop",
    "AU45": "blink",
}

# MediaPipe face-mesh landmark indices. "R"/"L" are the subject's right/left.
R_EYE_OUT, R_EYE_IN, L_EYE_IN, L_EYE_OUT = 33, 133, 362, 263
R_LID_UP, R_LID_LO, L_LID_UP, L_LID_LO = 159, 145, 386, 374
R_BROW_IN, L_BROW_IN = (55, 107), (285, 336)
R_BROW_OUT, L_BROW_OUT = (46, 70), (276, 300)
R_CHEEK, L_CHEEK = 50, 280
R_ALA, L_ALA = 129, 358
NASION, FOREHEAD, NOSE_TIP, SUBNASALE = 6, 10, 1, 2
MOUTH_R, MOUTH_L = 61, 291
LIP_UP_OUT, LIP_UP_IN, LIP_LO_IN, LIP_LO_OUT = 0, 13, 14, 17
CHIN = 152

#: Mouth-corner height is measured against a point this far from the upper towards the lower inner
#: lip. When the jaw drops the corners travel less than the lower lip, so the plain midpoint (0.5)
#: makes an open mouth look like a smile and the upper lip (0.0) makes it look like a frown. 0.4 was
#: chosen among 0.0-0.5 on CK+ dev subjects (benchmarks/au_rules_ckplus.py: surprise is no longer
#: read as happy).
CORNER_REFERENCE = 0.4

FEATURE_NAMES: tuple[str, ...] = (
    "brow_inner_h", "brow_outer_h", "brow_gap", "eye_open", "lower_lid_h", "cheek_h",
    "nose_len", "upper_lip_h", "corner_h", "mouth_width", "lip_gap", "jaw_open",
    "chin_lip", "lip_thickness", "corner_depth", "corner_asym",
)
_F = {name: i for i, name in enumerate(FEATURE_NAMES)}

#: Landmark jitter floor per feature (inter-ocular units): changes smaller than this are noise.
_NOISE_FLOOR: dict[str, float] = {
    "brow_inner_h": 0.012, "brow_outer_h": 0.012, "brow_gap": 0.010, "eye_open": 0.006,
    "lower_lid_h": 0.006, "cheek_h": 0.008, "nose_len": 0.008, "upper_lip_h": 0.006,
    "corner_h": 0.010, "mouth_width": 0.015, "lip_gap": 0.015, "jaw_open": 0.02,
    "chin_lip": 0.008, "lip_thickness": 0.008, "corner_depth": 0.015, "corner_asym": 0.01,
}

#: Typical neutral-face values (inter-ocular units) used only when a clip has too few confident
#: frames for its own baseline (a still image). Median over 550 FER2013 "neutral" training faces
#: (seed 0); rebuilt by ``python -m emollama.train.au_prior --data ../shared/data/fer2013``.
POPULATION_NEUTRAL: dict[str, float] = {
    "brow_inner_h": 0.239, "brow_outer_h": 0.238, "brow_gap": 0.444, "eye_open": 0.136,
    "lower_lid_h": -0.061, "cheek_h": -0.506, "nose_len": 0.605, "upper_lip_h": 0.238,
    "corner_h": 0.022, "mouth_width": 0.756, "lip_gap": 0.010, "jaw_open": 0.901,
    "chin_lip": 0.397, "lip_thickness": 0.225, "corner_depth": -0.185, "corner_asym": 0.0,
}


def face_frame(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotate and scale landmarks into the head frame.

    ``landmarks``: (N, 478, 3) in pixel units with image y pointing *down* and MediaPipe's z
    (negative towards the camera), i.e. ``(x * width, y * height, z * width)``.
    Returns ``(aligned, rotation)``: aligned (N, 478, 3) with x towards the subject's left eye as
    seen in the image, y up, z towards the viewer, origin between the inner eye corners, unit =
    inter-ocular distance; rotation (N, 3, 3) whose columns are the head axes in camera space.
    """
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.ndim == 2:
        pts = pts[None]
    cam = pts * np.array([1.0, -1.0, -1.0])  # y up, z towards the viewer
    r_eye = 0.5 * (cam[:, R_EYE_OUT] + cam[:, R_EYE_IN])
    l_eye = 0.5 * (cam[:, L_EYE_OUT] + cam[:, L_EYE_IN])
    ex = l_eye - r_eye
    iod = np.linalg.norm(ex, axis=-1, keepdims=True)
    ex = ex / np.maximum(iod, 1e-9)
    up = cam[:, FOREHEAD] - cam[:, NASION]
    ey = up - np.sum(up * ex, axis=-1, keepdims=True) * ex
    ey = ey / np.maximum(np.linalg.norm(ey, axis=-1, keepdims=True), 1e-9)
    ez = np.cross(ex, ey)
    rot = np.stack([ex, ey, ez], axis=-1)  # columns are the axes
    origin = 0.5 * (cam[:, R_EYE_IN] + cam[:, L_EYE_IN])
    aligned = np.einsum("nij,nki->nkj", rot, cam - origin[:, None, :]) / iod[:, None, :]
    return aligned, rot


def head_pose_degrees(rotation: np.ndarray) -> dict[str, float]:
    """Yaw (+ = subject turns to the viewer's right), pitch (+ = chin up) and roll, in degrees."""
    ex, ez = rotation[:, 0], rotation[:, 2]
    yaw = np.degrees(np.arctan2(ez[0], ez[2]))
    pitch = np.degrees(np.arcsin(np.clip(ez[1], -1.0, 1.0)))
    roll = np.degrees(np.arctan2(ex[1], ex[0]))
    return {"yaw": float(yaw), "pitch": float(pitch), "roll": float(roll)}


def _mean(a: np.ndarray, idx: tuple[int, ...] | int) -> np.ndarray:
    return a[:, list(idx)].mean(axis=1) if isinstance(idx, tuple) else a[:, idx]


def geometric_features(aligned: np.ndarray) -> np.ndarray:
    """(N, 478, 3) head-frame landmarks → (N, len(FEATURE_NAMES)) geometric features."""
    a = aligned
    y, x, z = a[..., 1], a[..., 0], a[..., 2]
    eye_y = 0.25 * (y[:, R_EYE_OUT] + y[:, R_EYE_IN] + y[:, L_EYE_OUT] + y[:, L_EYE_IN])
    brow_in_r, brow_in_l = _mean(a, R_BROW_IN), _mean(a, L_BROW_IN)
    brow_out_r, brow_out_l = _mean(a, R_BROW_OUT), _mean(a, L_BROW_OUT)
    lip_centre_y = y[:, LIP_UP_IN] + CORNER_REFERENCE * (y[:, LIP_LO_IN] - y[:, LIP_UP_IN])
    corner_r = y[:, MOUTH_R] - lip_centre_y
    corner_l = y[:, MOUTH_L] - lip_centre_y
    feats = {
        "brow_inner_h": 0.5 * (brow_in_r[:, 1] + brow_in_l[:, 1]) - eye_y,
        "brow_outer_h": 0.5 * (brow_out_r[:, 1] + brow_out_l[:, 1]) - eye_y,
        "brow_gap": np.abs(brow_in_l[:, 0] - brow_in_r[:, 0]),
        "eye_open": 0.5 * ((y[:, R_LID_UP] - y[:, R_LID_LO]) + (y[:, L_LID_UP] - y[:, L_LID_LO])),
        "lower_lid_h": 0.5 * (y[:, R_LID_LO] + y[:, L_LID_LO]) - eye_y,
        "cheek_h": 0.5 * (y[:, R_CHEEK] + y[:, L_CHEEK]) - eye_y,
        "nose_len": eye_y - 0.5 * (y[:, R_ALA] + y[:, L_ALA]),
        "upper_lip_h": y[:, SUBNASALE] - y[:, LIP_UP_OUT],
        "corner_h": 0.5 * (corner_r + corner_l),
        "mouth_width": np.abs(x[:, MOUTH_L] - x[:, MOUTH_R]),
        "lip_gap": np.maximum(y[:, LIP_UP_IN] - y[:, LIP_LO_IN], 0.0),
        "jaw_open": y[:, SUBNASALE] - y[:, CHIN],
        "chin_lip": y[:, LIP_LO_OUT] - y[:, CHIN],
        "lip_thickness": (y[:, LIP_UP_OUT] - y[:, LIP_UP_IN]) + (y[:, LIP_LO_IN] - y[:, LIP_LO_OUT]),
        "corner_depth": 0.5 * (z[:, MOUTH_R] + z[:, MOUTH_L]) - 0.5 * (z[:, LIP_UP_IN] + z[:, LIP_LO_IN]),
        "corner_asym": corner_l - corner_r,
    }
    return np.stack([feats[name] for name in FEATURE_NAMES], axis=-1)


@dataclass(frozen=True)
class Baseline:
    """A face's neutral reference: feature values and the per-feature dead-zone."""

    values: np.ndarray  # (F,)
    deadzone: np.ndarray  # (F,)
    source: str  # "own_least_expressive" | "population_prior"


def estimate_baseline(features: np.ndarray, min_frames: int = 5, fraction: float = 0.3) -> Baseline:
    """The face's own least-expressive frames, or the population prior when there are too few.

    Expressiveness of a frame is its summed robust z-distance from the clip median; the baseline is
    the median of the least-expressive ``fraction`` of frames. The dead-zone is the larger of the
    fixed noise floor and twice the spread among those baseline frames.
    """
    floor = np.array([_NOISE_FLOOR[n] for n in FEATURE_NAMES])
    feats = np.asarray(features, dtype=np.float64)
    feats = feats[np.all(np.isfinite(feats), axis=1)] if feats.size else feats.reshape(0, len(FEATURE_NAMES))
    if len(feats) < min_frames:
        prior = np.array([POPULATION_NEUTRAL[n] for n in FEATURE_NAMES])
        return Baseline(prior, floor * 2.0, "population_prior")
    median = np.median(feats, axis=0)
    mad = np.median(np.abs(feats - median), axis=0) * 1.4826
    scale = np.maximum(mad, floor)
    expressiveness = np.sum(np.abs(feats - median) / scale, axis=1)
    k = max(min_frames // 2, int(round(fraction * len(feats))))
    calm = feats[np.argsort(expressiveness)[:k]]
    values = np.median(calm, axis=0)
    spread = np.median(np.abs(calm - values), axis=0) * 1.4826
    return Baseline(values, np.maximum(floor, 2.0 * spread), "own_least_expressive")


def au_intensities(features: np.ndarray, baseline: Baseline) -> np.ndarray:
    """(N, F) features → (N, len(AU_NAMES)) intensities in [0, 5]."""
    feats = np.asarray(features, dtype=np.float64)
    delta = feats - baseline.values
    dz = baseline.deadzone

    def up(name: str, gain: float) -> np.ndarray:
        i = _F[name]
        return gain * np.maximum(delta[:, i] - dz[i], 0.0)

    def down(name: str, gain: float) -> np.ndarray:
        i = _F[name]
        return gain * np.maximum(-delta[:, i] - dz[i], 0.0)

    eye_ratio = feats[:, _F["eye_open"]] / max(baseline.values[_F["eye_open"]], 1e-6)
    blink = 5.0 * np.clip((0.6 - eye_ratio) / 0.5, 0.0, 1.0)
    narrowing = np.where(eye_ratio > 0.5, down("eye_open", 40.0), 0.0)

    widen = up("mouth_width", 22.0)
    corner_up = up("corner_h", 35.0)
    # Direction of the corner movement: up-and-out is a smile (AU12), straight out is AU20.
    raise_share = np.clip(
        np.maximum(delta[:, _F["corner_h"]], 0.0) / (0.5 * np.maximum(delta[:, _F["mouth_width"]], 0.0) + 1e-6),
        0.0, 1.0,
    )
    au = {
        "AU01": up("brow_inner_h", 25.0),
        "AU02": up("brow_outer_h", 25.0),
        "AU04": down("brow_gap", 35.0) + 0.5 * down("brow_inner_h", 25.0),
        "AU05": up("eye_open", 60.0),
        "AU06": up("cheek_h", 60.0) + 0.5 * up("lower_lid_h", 80.0),
        "AU07": up("lower_lid_h", 80.0) + narrowing,
        "AU09": down("nose_len", 70.0),
        "AU10": down("upper_lip_h", 60.0),
        "AU12": corner_up + widen * raise_share,
        "AU14": down("corner_depth", 50.0),
        "AU15": down("corner_h", 35.0),
        # The chin-to-lower-lip distance also shrinks when the mouth opens wide, so AU17 is only
        # read with (nearly) closed lips.
        "AU17": down("chin_lip", 60.0) * np.clip(1.0 - np.maximum(delta[:, _F["lip_gap"]], 0.0) / 0.1, 0.0, 1.0),
        "AU20": widen * (1.0 - raise_share),
        "AU23": down("lip_thickness", 60.0),
        "AU25": up("lip_gap", 12.0),
        "AU26": up("jaw_open", 13.0),
        "AU45": blink,
    }
    return np.clip(np.stack([au[name] for name in AU_NAMES], axis=-1), 0.0, 5.0)


def au_asymmetry(features: np.ndarray, baseline: Baseline) -> np.ndarray:
    """Signed one-sided mouth-corner raise (IOD units, + = subject's left corner higher).

    A unilateral corner raise is the classic contempt display; it is not an AU intensity, so it
    is reported beside the AUs rather than folded into AU12/AU14.
    """
    i = _F["corner_asym"]
    delta = np.asarray(features, dtype=np.float64)[:, i] - baseline.values[i]
    return np.where(np.abs(delta) > baseline.deadzone[i], delta, 0.0)


def still_image_aus(landmarks: np.ndarray) -> tuple[dict[str, float], float]:
    """AU intensities and lip-corner asymmetry of one still face (478 x 3 landmarks, pixels).

    A single image has no resting frames of its own, so the baseline is the population prior
    (:func:`estimate_baseline` with one frame); used where face crops are scored one by one.
    """
    feats = geometric_features(face_frame(landmarks)[0])
    base = estimate_baseline(feats)
    return (dict(zip(AU_NAMES, (float(v) for v in au_intensities(feats, base)[0]), strict=True)),
            float(au_asymmetry(feats, base)[0]))
