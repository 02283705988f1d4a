"""Face track of the main person: detection, 478-point mesh, aligned crops, per-frame expression.

MediaPipe FaceDetection gives a confidence per face; FaceMesh (tracking mode on video) gives the
478 landmarks. Meshes are matched to detections by box overlap, linked across frames into tracks
by overlap with the previous box, and the *main* face is the track that is both large and
persistent (frames seen × median box area). Everything is computed frame by frame as frames
stream in; only landmarks (a few kB per frame) and expression probabilities are kept.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import cv2
import numpy as np

from emollama.errors import ModelUnavailableError
from emollama.heads.face import FER_LABELS, ExpressionModel, load_expression_model
from emollama.media.decode import Frame
from emollama.perception.action_units import L_EYE_IN, L_EYE_OUT, R_EYE_IN, R_EYE_OUT

#: A face counts as confident when its mesh overlaps a detection at least this sure.
MIN_CONFIDENCE = 0.5
_LINK_IOU = 0.3


@dataclass
class FaceObservation:
    frame_index: int
    time_s: float
    landmarks: np.ndarray  # (478, 3) float32: x, y in pixels; z in pixels (MediaPipe scale)
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 pixels
    confidence: float  # matched detection score, 0 when the detector missed this face
    expression: np.ndarray  # probabilities over the expression model's labels (FaceScan.expression_labels)


@dataclass
class FaceTrack:
    observations: list[FaceObservation] = field(default_factory=list)

    @property
    def last_box(self) -> tuple[float, float, float, float]:
        return self.observations[-1].box

    def prominence(self) -> float:
        areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in (o.box for o in self.observations)]
        return len(self.observations) * float(np.median(areas))


@dataclass
class FaceScan:
    """All sampled frames' faces, with the main track chosen."""

    times: list[float]
    main: FaceTrack | None
    max_faces: int
    crops: list[np.ndarray] = field(default_factory=list)  # main-face crops kept on request
    expression_labels: tuple[str, ...] = FER_LABELS  # the order of FaceObservation.expression


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def aligned_crop(rgb: np.ndarray, landmarks: np.ndarray, size: int = 112, scale: float = 1.15) -> np.ndarray:
    """Square face crop rotated so the eyes are level, sized from the face mesh extent.

    The side is ``scale`` × the mesh width, centred on the mesh box: close to the Haar-box-plus-
    margin framing the FER2013 network was trained on.
    """
    r_eye = landmarks[[R_EYE_OUT, R_EYE_IN], :2].mean(axis=0)
    l_eye = landmarks[[L_EYE_OUT, L_EYE_IN], :2].mean(axis=0)
    angle = float(np.degrees(np.arctan2(l_eye[1] - r_eye[1], l_eye[0] - r_eye[0])))
    lo, hi = landmarks[:, :2].min(axis=0), landmarks[:, :2].max(axis=0)
    centre = (lo + hi) / 2.0
    side = max(float(hi[0] - lo[0]), float(hi[1] - lo[1]) * 0.9) * scale
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, size / max(side, 1.0))
    m[:, 2] += np.array([size / 2.0, size / 2.0]) - centre
    return cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


#: How many threads are inside :func:`_native_stderr_silenced`, and the saved stderr descriptor.
_MUTED: list = [0, None]
_MUTE_LOCK = threading.Lock()


@contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Mute the C++ log lines MediaPipe prints when its graphs start (glog ignores our settings).

    Only file descriptor 2 is redirected, while MediaPipe runs; Python errors still surface as
    exceptions, and Rich output goes to stdout. The descriptor is process-wide, so the muting is
    counted: overlapping spans (threads) restore it once, when the last one ends.
    """
    with _MUTE_LOCK:
        _MUTED[0] += 1
        if _MUTED[0] == 1:  # the first muter swaps fd 2 out; nested or concurrent ones only count
            try:
                _MUTED[1] = os.dup(2)
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 2)
                os.close(devnull)
            except OSError:  # no real stderr (embedded interpreters)
                _MUTED[1] = None
    try:
        yield
    finally:
        with _MUTE_LOCK:
            _MUTED[0] -= 1
            if _MUTED[0] == 0 and _MUTED[1] is not None:  # the last one out restores it
                os.dup2(_MUTED[1], 2)
                os.close(_MUTED[1])
                _MUTED[1] = None


class FaceAnalyzer:
    """Runs detection + mesh + expression over a frame stream. Create once, reuse per clip."""

    def __init__(self, expression: ExpressionModel | None = None, max_faces: int = 3) -> None:
        try:
            from mediapipe.python.solutions import face_detection, face_mesh
        except ImportError as exc:  # pragma: no cover - install problem
            raise ModelUnavailableError(
                f"mediapipe is not importable ({exc}); install it with: pip install --no-deps mediapipe==0.10.14"
            ) from None
        self._face_detection = face_detection
        self._face_mesh = face_mesh
        self.max_faces = max_faces
        self.expression = expression if expression is not None else load_expression_model()
        with _native_stderr_silenced():
            self._detector = face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.3)
            self._detector.process(np.zeros((64, 64, 3), dtype=np.uint8))  # start the graph while muted

    def _mesh(self, static: bool):  # noqa: ANN202 - mediapipe type
        """A new face-mesh graph; create it inside :func:`_native_stderr_silenced` (its C++ start-up logs)."""
        return self._face_mesh.FaceMesh(static_image_mode=static, max_num_faces=self.max_faces,
                                        refine_landmarks=True, min_detection_confidence=0.4,
                                        min_tracking_confidence=0.5)

    def scan(self, frames: Iterable[Frame], *, static: bool = False, keep_crops: int = 0,
             expected_frames: int | None = None) -> FaceScan:
        """Process frames in order. ``keep_crops``: keep up to that many evenly spread main-face crops."""
        tracks: list[FaceTrack] = []
        times: list[float] = []
        max_faces = 0
        crop_store: dict[int, list[tuple[int, np.ndarray]]] = {}
        stride = max(1, (expected_frames or 1) // keep_crops) if keep_crops else 0
        # One muted span from the graph's creation to its close: MediaPipe opens the calculators on its
        # own threads, so a gap between "created" and "first frame" let a start-up warning through.
        with _native_stderr_silenced(), self._mesh(static) as mesh:
            for frame in frames:
                times.append(frame.time_s)
                faces = self._faces(frame, mesh)
                max_faces = max(max_faces, len(faces))
                if not faces:
                    continue
                crops = [aligned_crop(frame.rgb, lm) for lm, _, _ in faces]
                probs = self.expression.predict(crops)
                for (lm, box, conf), crop, prob in zip(faces, crops, probs, strict=True):
                    obs = FaceObservation(frame.index, frame.time_s, lm, box, conf, prob)
                    track = self._link(tracks, box, frame.index)
                    track.observations.append(obs)
                    if stride and frame.index % stride == 0:
                        crop_store.setdefault(id(track), []).append((frame.index, crop))
        main = max(tracks, key=FaceTrack.prominence) if tracks else None
        kept = [c for _, c in crop_store.get(id(main), [])][:keep_crops] if main is not None else []
        return FaceScan(times=times, main=main, max_faces=max_faces, crops=kept,
                        expression_labels=tuple(self.expression.labels))

    def _faces(self, frame: Frame, mesh) -> list[tuple[np.ndarray, tuple[float, float, float, float], float]]:  # noqa: ANN001
        h, w = frame.rgb.shape[:2]
        det = self._detector.process(frame.rgb)
        boxes = []
        for d in det.detections or []:
            rb = d.location_data.relative_bounding_box
            boxes.append(((rb.xmin * w, rb.ymin * h, (rb.xmin + rb.width) * w, (rb.ymin + rb.height) * h),
                          float(d.score[0])))
        res = mesh.process(frame.rgb)
        out = []
        for face in res.multi_face_landmarks or []:
            lm = np.array([(p.x * w, p.y * h, p.z * w) for p in face.landmark], dtype=np.float32)
            box = (float(lm[:, 0].min()), float(lm[:, 1].min()), float(lm[:, 0].max()), float(lm[:, 1].max()))
            conf = max((score for b, score in boxes if iou(b, box) > 0.3), default=0.0)
            out.append((lm, box, conf))
        return out

    @staticmethod
    def _link(tracks: list[FaceTrack], box: tuple[float, float, float, float], frame_index: int) -> FaceTrack:
        best, best_iou = None, _LINK_IOU
        for track in tracks:
            if track.observations[-1].frame_index == frame_index:
                continue  # already holds a face from this frame
            overlap = iou(track.last_box, box)
            if overlap > best_iou:
                best, best_iou = track, overlap
        if best is None:
            best = FaceTrack()
            tracks.append(best)
        return best
