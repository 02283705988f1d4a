"""Face tracking on real pixels: the main face is the large, persistent one."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from emollama.media.decode import Frame
from tests.clips import example_frames

pytestmark = pytest.mark.filterwarnings("ignore")


def two_face_frames(n: int = 6) -> list[Frame]:
    """The example face large on the left and a half-size copy on the right, in every frame."""
    frames = []
    for i, img in enumerate(example_frames(limit=n)):
        big = Image.fromarray(img)
        small = big.resize((int(big.width * 0.7), int(big.height * 0.7)))
        canvas = Image.new("RGB", (big.width + small.width + 40, big.height), (90, 90, 90))
        canvas.paste(big, (0, 0))
        canvas.paste(small, (big.width + 40, big.height // 4))
        frames.append(Frame(i, i / 10, np.asarray(canvas)))
    return frames


def test_main_face_is_the_larger_persistent_track():
    from emollama.perception.face import FaceAnalyzer

    scan = FaceAnalyzer().scan(two_face_frames(), keep_crops=3, expected_frames=6)
    assert scan.max_faces == 2
    assert scan.main is not None and len(scan.main.observations) == 6
    # The large face is in the left 320 px; the 0.7x copy starts at x = 360.
    assert all(o.box[2] < 330 for o in scan.main.observations)
    assert len(scan.crops) == 3 and scan.crops[0].shape == (112, 112, 3)
