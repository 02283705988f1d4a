"""Decoding: every input kind, and every bad input the issue lists, on files made here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emollama.errors import InputError, InputTooLongError, MediaDecodeError
from emollama.media.decode import MediaReader
from tests.clips import EXAMPLE, write_long_sparse_video, write_video, write_wav


def sine(seconds: float, rate: int = 16000, hz: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_video_with_audio(tmp_path: Path):
    p = write_video(tmp_path / "a.mp4", seconds=2.0, fps=25, audio=sine(2.0))
    r = MediaReader(p)
    assert r.info.kind == "video" and r.info.has_audio and r.info.has_video
    frames = list(r.frames(fps=10))
    assert 19 <= len(frames) <= 21  # 2 s sampled at 10 fps from 25 fps
    assert np.all(np.diff([f.time_s for f in frames]) > 0.05)
    audio = r.audio()
    assert audio is not None and abs(len(audio) / 16000 - 2.0) < 0.15


@pytest.mark.parametrize("container", ["mkv", "mp4"])
def test_audio_that_starts_after_the_picture_shares_the_frame_clock(tmp_path: Path, container: str):
    """Sample 0 is the first frame's moment: a track starting 0.6 s late gets 0.6 s of silence first."""
    tone = sine(1.0)
    p = write_video(tmp_path / f"late.{container}", seconds=2.0, fps=10, audio=tone, audio_start_s=0.6)
    audio = MediaReader(p).audio()
    assert audio is not None
    loud = np.flatnonzero(np.abs(audio) > 0.05)
    assert abs(loud[0] / 16000 - 0.6) < 0.08, loud[0] / 16000
    on_time = MediaReader(write_video(tmp_path / f"on.{container}", seconds=2.0, fps=10, audio=tone)).audio()
    assert np.flatnonzero(np.abs(on_time) > 0.05)[0] / 16000 < 0.08


def test_sampling_keeps_every_frame_of_a_slow_video(tmp_path: Path):
    p = write_video(tmp_path / "slow.mp4", seconds=2.0, fps=5)
    assert len(list(MediaReader(p).frames(fps=10))) == 10


def test_video_without_audio(tmp_path: Path):
    r = MediaReader(write_video(tmp_path / "silent.mp4", seconds=1.0))
    assert r.info.has_video and not r.info.has_audio
    assert r.audio() is None


def test_audio_only_file(tmp_path: Path):
    r = MediaReader(write_wav(tmp_path / "a.wav", sine(1.5, rate=44100), rate=44100))
    assert r.info.kind == "audio" and not r.info.has_video
    assert list(r.frames()) == []
    audio = r.audio()
    assert audio is not None and abs(len(audio) - 24000) < 800  # resampled 44.1 kHz -> 16 kHz


def test_still_image(tmp_path: Path):
    p = tmp_path / "face.png"
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(p)
    r = MediaReader(p)
    assert r.info.kind == "image"
    frames = list(r.frames())
    assert len(frames) == 1 and frames[0].rgb.shape == (171, 256, 3)  # small images are enlarged for the mesh


def test_missing_file(tmp_path: Path):
    with pytest.raises(InputError, match="no such file"):
        MediaReader(tmp_path / "nope.mp4")


def test_directory(tmp_path: Path):
    with pytest.raises(InputError, match="is a directory"):
        MediaReader(tmp_path)


def test_zero_byte_file(tmp_path: Path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        MediaReader(p)


def test_text_file_renamed_mp4(tmp_path: Path):
    p = tmp_path / "notes.mp4"
    p.write_text("this is not a video\n" * 20)
    with pytest.raises(MediaDecodeError, match="cannot decode"):
        MediaReader(p)


def test_truncated_mp4_is_refused_or_partially_decoded(tmp_path: Path):
    data = EXAMPLE.read_bytes()
    p = tmp_path / "cut.mp4"
    p.write_bytes(data[: len(data) // 3])
    try:
        r = MediaReader(p)
        frames = list(r.frames())
    except MediaDecodeError as exc:
        assert str(p) in str(exc)
    else:  # a readable prefix is analysed, with a warning or fewer frames than the original
        assert frames or r.warnings


def test_corrupt_image(tmp_path: Path):
    p = tmp_path / "broken.jpg"
    p.write_bytes(b"\xff\xd8\xff\xe0garbage" * 10)
    with pytest.raises(MediaDecodeError):
        MediaReader(p)


def test_two_hour_file_is_refused_from_its_metadata(tmp_path: Path):
    p = write_long_sparse_video(tmp_path / "film.mkv", hours=2.0)
    assert p.stat().st_size < 100_000
    with pytest.raises(InputTooLongError, match="longer than the limit"):
        MediaReader(p)


def test_limit_is_configurable(tmp_path: Path):
    p = write_video(tmp_path / "two.mp4", seconds=2.0)
    with pytest.raises(InputTooLongError, match="max-duration"):
        MediaReader(p, max_duration_s=1.0)


def test_large_frames_are_downscaled_while_decoding(tmp_path: Path):
    big = [np.zeros((1440, 2560, 3), np.uint8)] * 2
    r = MediaReader(write_video(tmp_path / "big.mp4", big, fps=2))
    frame = next(iter(r.frames()))
    assert max(frame.rgb.shape[:2]) == 1280


def test_exif_rotated_photo_is_turned_upright(tmp_path: Path):
    from PIL import Image as PILImage

    img = np.zeros((300, 400, 3), np.uint8)
    img[:50] = 255  # a white band at the top of the upright picture
    stored = PILImage.fromarray(img).rotate(90, expand=True)  # stored sideways (400 x 300 -> 300 x 400)
    exif = PILImage.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    p = tmp_path / "phone.jpg"
    stored.save(p, exif=exif.tobytes())
    frame = next(iter(MediaReader(p).frames()))
    assert frame.rgb.shape[:2] == (300, 400)
    assert frame.rgb[:40].mean() > 200 and frame.rgb[-40:].mean() < 50


def test_sixteen_bit_greyscale_is_scaled_not_clipped(tmp_path: Path):
    arr = (np.linspace(0, 4000, 300 * 300).reshape(300, 300)).astype(np.uint16)
    p = tmp_path / "grey16.png"
    Image.fromarray(arr).save(p)
    rgb = next(iter(MediaReader(p).frames())).rgb
    assert rgb.min() < 10 and rgb.max() > 245 and 100 < rgb.mean() < 155


def test_truncated_image_is_a_decode_error(tmp_path: Path):
    src = tmp_path / "full.jpg"
    Image.fromarray((np.random.default_rng(0).random((400, 400, 3)) * 255).astype(np.uint8)).save(src, quality=95)
    p = tmp_path / "half.jpg"
    p.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(MediaDecodeError):
        list(MediaReader(p).frames())


def test_non_finite_or_non_positive_settings_are_refused(tmp_path: Path):
    p = write_video(tmp_path / "a.mp4", seconds=0.5)
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(InputError):
            list(MediaReader(p).frames(fps=bad))
        with pytest.raises(InputError):
            MediaReader(p, max_duration_s=bad)


def test_short_limits_are_stated_in_seconds(tmp_path: Path):
    p = write_video(tmp_path / "two.mp4", seconds=2.0)
    with pytest.raises(InputTooLongError, match=r"2\.0 s is longer than the limit of 1\.0 s"):
        MediaReader(p, max_duration_s=1.0)


@pytest.mark.parametrize("container", ["mkv", "mp4"])
def test_audio_starting_late_is_not_reported_as_a_truncated_video(tmp_path: Path, container: str):
    """A 5-s picture with its sound starting 2 s late: the file lasts 7 s, the video is whole (no warning)."""
    p = write_video(tmp_path / f"late.{container}", seconds=5.0, fps=10, audio=sine(5.0), audio_start_s=2.0)
    r = MediaReader(p)
    frames = list(r.frames(fps=10))
    assert frames and not any("truncated" in w for w in r.warnings), r.warnings


def test_a_huge_photo_is_reduced_early_upright_and_without_pil_noise(tmp_path: Path, monkeypatch, recwarn):
    """Over PIL's pixel limit (lowered here so the test stays small): a warning in the result, none on stderr,
    the EXIF orientation still applied, and the frame no larger than the analysis size."""
    from PIL import Image

    from emollama.media import decode

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000_000)
    img = Image.new("RGB", (6000, 2600), (200, 10, 10))
    img.paste((10, 10, 200), (0, 0, 600, 2600))  # a blue band on the left edge
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view"
    path = tmp_path / "huge.jpg"
    img.save(path, exif=exif, quality=85)
    reader = MediaReader(path)
    (frame,) = list(reader.frames())
    h, w = frame.rgb.shape[:2]
    assert (reader.info.width, reader.info.height) == (2600, 6000)
    assert h > w and max(h, w) <= decode.MAX_FRAME_SIDE
    assert frame.rgb[:20, w // 2, 2].mean() > 150  # the left band is on top after the rotation
    assert any("megapixels" in m for m in reader.warnings)
    assert not [x for x in recwarn if issubclass(x.category, Image.DecompressionBombWarning)]


def test_parts_of_a_file_that_are_not_used_are_named(tmp_path: Path):
    """A second audio stream and an animated GIF's later frames used to be dropped without a word."""
    from fractions import Fraction

    import av

    from tests.clips import write_audio_frames

    two = tmp_path / "two_tracks.mkv"
    with av.open(str(two), "w") as out:
        v = out.add_stream("mpeg4", rate=10)
        v.width, v.height, v.pix_fmt = 64, 64, "yuv420p"
        tracks = [out.add_stream("aac", rate=16000, layout="mono") for _ in range(2)]
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 90, np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 10)
            for p in v.encode(frame):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
        for track in tracks:
            write_audio_frames(out, track, sine(1.0), 16000)
    reader = MediaReader(two)
    assert reader.audio() is not None
    assert any("2 audio streams" in w for w in reader.warnings), reader.warnings

    gif = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (64, 64), (c, c, c)) for c in (20, 120, 220)]
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert any("3 frames" in w for w in MediaReader(gif).warnings)
    single = tmp_path / "still.gif"
    frames[0].save(single)
    assert not MediaReader(single).warnings
