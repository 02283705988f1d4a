"""Rebuild ``examples/astronaut_happy.mp4``, the bundled demo clip.

Picture: scikit-image's ``astronaut`` (Eileen Collins, a public-domain NASA photograph). The
face is animated so it has an expression *change* to find: the mouth corners start slightly
lowered, rise into a broad smile that peaks at about 1.9 s and relax again, while the camera
drifts and zooms gently. The warp is a smooth displacement field centred on the mouth corners
found by MediaPipe's face mesh. Sound: Debian's ``espeak-ng`` speaking an English sentence.

    apt-get install espeak-ng          # only needed to rebuild the clip
    pip install scikit-image
    python scripts/make_example_clip.py --out examples/astronaut_happy.mp4
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

SENTENCE = "Oh, this is wonderful news! I am so happy, thank you all so much!"
FPS = 25
SIZE = 320
MOUTH_R, MOUTH_L = 61, 291


def mouth_corners(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    from mediapipe.python.solutions import face_mesh

    with face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True) as mesh:
        res = mesh.process(rgb)
    if not res.multi_face_landmarks:
        raise SystemExit("no face found in the source photograph")
    h, w = rgb.shape[:2]
    lm = np.array([(p.x * w, p.y * h) for p in res.multi_face_landmarks[0].landmark])
    face_w = float(lm[:, 0].max() - lm[:, 0].min())
    return lm[MOUTH_R], lm[MOUTH_L], face_w


def smile_amount(t: float, duration: float) -> float:
    """-1 (corners lowered) .. +1 (broad smile): a raised-cosine bump peaking at 55 % of the clip."""
    peak, width = 0.55 * duration, 0.35 * duration
    x = np.clip((t - peak) / width, -1.0, 1.0)
    return float(-1.0 + 2.0 * 0.5 * (1.0 + np.cos(np.pi * x)))


def warp_mouth(rgb: np.ndarray, corners: tuple[np.ndarray, np.ndarray], face_w: float, amount: float) -> np.ndarray:
    """Move each mouth corner up/outwards (amount > 0) or down (amount < 0) with a Gaussian field."""
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    sigma = 0.09 * face_w
    map_x, map_y = xx.copy(), yy.copy()
    for corner, side in zip(corners, (-1.0, 1.0), strict=True):
        dy = -0.03 * face_w * amount  # up for a smile
        dx = side * 0.02 * face_w * max(amount, 0.0)  # and slightly outwards
        g = np.exp(-((xx - corner[0]) ** 2 + (yy - corner[1]) ** 2) / (2 * sigma**2)).astype(np.float32)
        map_x -= dx * g
        map_y -= dy * g
    return cv2.remap(rgb, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def speech_wav(text: str, path: Path) -> None:
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is needed to rebuild the clip: apt-get install espeak-ng")
    subprocess.run(["espeak-ng", "-v", "en-us+f3", "-s", "150", "-p", "65", "-w", str(path), text], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("examples/astronaut_happy.mp4"))
    args = parser.parse_args()
    from skimage import data

    photo = data.astronaut()  # 512x512 RGB
    face = photo[20:340, 110:430]  # square around the head
    r_corner, l_corner, face_w = mouth_corners(face)

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        speech_wav(SENTENCE, wav)
        with av.open(str(wav)) as src:
            stream = src.streams.audio[0]
            resampler = av.AudioResampler(format="fltp", layout="mono", rate=16000)
            samples = np.concatenate([f.to_ndarray().reshape(-1) for fr in src.decode(stream)
                                      for f in resampler.resample(fr)])
        duration = len(samples) / 16000 + 0.4
        n_frames = int(duration * FPS)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with av.open(str(args.out), "w") as out:
            v = out.add_stream("libx264", rate=FPS)
            v.width = v.height = SIZE
            v.pix_fmt = "yuv420p"
            v.options = {"crf": "28", "preset": "slow"}
            a = out.add_stream("aac", rate=16000, layout="mono")
            a.bit_rate = 32000
            h, w = face.shape[:2]
            for i in range(n_frames):
                t = i / FPS
                img = warp_mouth(face, (r_corner, l_corner), face_w, smile_amount(t, duration))
                zoom = 1.0 + 0.04 * np.sin(2 * np.pi * t / duration)
                m = cv2.getRotationMatrix2D((w / 2 + 6 * np.sin(t), h / 2), 1.5 * np.sin(1.3 * t), zoom)
                img = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
                img = cv2.resize(img, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
                frame.pts = i
                frame.time_base = Fraction(1, FPS)
                for packet in v.encode(frame):
                    out.mux(packet)
            for packet in v.encode():
                out.mux(packet)
            pad = np.zeros(int(0.2 * 16000), dtype=np.float32)
            audio = np.concatenate([pad, samples.astype(np.float32), pad])
            for start in range(0, len(audio), 1024):
                chunk = audio[start:start + 1024].reshape(1, -1)
                af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                af.sample_rate = 16000
                af.pts = start
                af.time_base = Fraction(1, 16000)
                for packet in a.encode(af):
                    out.mux(packet)
            for packet in a.encode():
                out.mux(packet)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KB, {duration:.1f} s)")


if __name__ == "__main__":
    main()
