"""Offline "visual objective description": what can be measured about the peak frame.

MERR used MiniGPT-v2 to describe the scene. Offline we cannot recognise clothes or places, so we
describe only what is measured, and say so: how the face is framed (shot size and position), head
orientation (our best proxy for gaze; no iris tracking is run), how many faces are visible, and
the lighting of the peak frame (brightness, contrast, back-light).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class VisualObjective:
    text: str
    source: str  # "measured" (offline) or the vision model's name
    faces: int
    shot: str | None
    position: str | None
    head_direction: str | None
    lighting: str | None
    brightness: float | None
    contrast: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def shot_size(face_area_fraction: float) -> str:
    """Film-grammar shot names from the share of the frame the face box covers."""
    if face_area_fraction >= 0.25:
        return "close-up"
    if face_area_fraction >= 0.08:
        return "medium close-up"
    if face_area_fraction >= 0.02:
        return "medium shot"
    return "wide shot"


def head_direction(pose: dict[str, float]) -> str:
    """Yaw (+ = subject turns to the viewer's right) and pitch (+ = chin up) in words."""
    yaw, pitch = pose.get("yaw", 0.0), pose.get("pitch", 0.0)
    parts = []
    if abs(yaw) >= 15:
        parts.append(f"turned {abs(yaw):.0f}° to the viewer's {'right' if yaw > 0 else 'left'}")
    if abs(pitch) >= 12:
        parts.append(f"tilted {'up' if pitch > 0 else 'down'} {abs(pitch):.0f}°")
    return "facing the camera" if not parts else " and ".join(parts)


def lighting(frame: np.ndarray, box: tuple[float, float, float, float] | None) -> tuple[str, float, float]:
    """Brightness (mean luma 0-255), contrast (luma std) and a word for them."""
    rgb = frame.astype(np.float32)
    luma = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    mean, std = float(luma.mean()), float(luma.std())
    word = "dim" if mean < 70 else "bright" if mean > 185 else "evenly lit"
    if std < 25:
        word += ", low contrast"
    if box is not None:
        h, w = luma.shape
        x0, y0, x1, y1 = (int(np.clip(v, 0, m)) for v, m in zip(box, (w, h, w, h), strict=True))
        if x1 > x0 and y1 > y0:
            face = float(luma[y0:y1, x0:x1].mean())
            if face < mean - 30:
                word += ", face darker than the background (back-lit)"
    return word, round(mean, 1), round(std, 1)


def describe_objective(*, faces: int, frame: np.ndarray | None, box: tuple[float, float, float, float] | None,
                       pose: dict[str, float] | None) -> VisualObjective:
    """Assemble the measured description; any missing piece is left out of the text, not guessed."""
    if frame is None:
        return VisualObjective("no picture: the clip has no video", "measured", 0, None, None, None, None, None, None)
    h, w = frame.shape[:2]
    shot = position = direction = None
    if box is not None and faces > 0:
        x0, y0, x1, y1 = box
        shot = shot_size(max(0.0, (x1 - x0) * (y1 - y0)) / float(w * h))
        cx = 0.5 * (x0 + x1) / w
        position = "centred" if 0.35 <= cx <= 0.65 else "left of centre" if cx < 0.35 else "right of centre"
    if pose:
        direction = head_direction(pose)
    light, brightness, contrast = lighting(frame, box)
    if faces == 0:
        text = f"No face is visible; the picture is {light}."
    else:
        who = "One person is visible" if faces == 1 else f"{faces} faces are visible, the speaker's is tracked"
        bits = [who]
        if shot:
            bits.append(f"in a {shot}, {position} in the frame")
        if direction:
            bits.append(f"with the head {direction}")
        text = ", ".join(bits) + f". The picture is {light}."
    return VisualObjective(text, "measured", faces, shot, position, direction, light, brightness, contrast)
