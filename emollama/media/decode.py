"""Decode a media file once, streaming: sampled RGB frames and 16 kHz mono audio.

Why streaming: a user may point ``analyze`` at a feature film. Frames are yielded one at a time
at the sampling rate (never the whole video in memory) and audio is capped by the same duration
limit, so memory stays bounded. Inputs may be a video (with or without sound), an audio-only
file or a single still image; :class:`MediaReader` reports which modalities exist.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from emollama.errors import InputError, InputTooLongError, MediaDecodeError
from emollama.schema import MediaInfo
from emollama.validate import check_input_file

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
AUDIO_RATE = 16_000
#: Frames larger than this (long side, pixels) are downscaled while decoding: face landmarks do
#: not need 4K, and it keeps per-frame cost and memory flat.
MAX_FRAME_SIDE = 1280
#: Default sampling rate: every 100 ms, so an expression lasting 200 ms is seen at least twice.
DEFAULT_FPS = 10.0
#: Default refusal limit. Ten minutes at 10 fps is 6,000 frames of landmarks (tens of MB); a two-hour
#: film is refused up front from its container metadata instead of being decoded for an hour.
DEFAULT_MAX_DURATION_S = 600.0
#: Still images smaller than this (long side, pixels) are enlarged before face analysis.
MIN_IMAGE_SIDE = 256


def check_fps(fps: float) -> float:
    """Frame-sampling rate must be a finite positive number."""
    if not isinstance(fps, int | float) or not math.isfinite(fps) or fps <= 0:
        raise InputError(f"--fps must be a positive number, got {fps}")
    return float(fps)


def check_max_duration(seconds: float) -> float:
    if not isinstance(seconds, int | float) or not math.isfinite(seconds) or seconds <= 0:
        raise InputError(f"--max-duration must be a positive number of seconds, got {seconds}")
    return float(seconds)


def _duration_text(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


@dataclass(frozen=True)
class Frame:
    index: int  # position among the *sampled* frames
    time_s: float
    rgb: np.ndarray  # HxWx3 uint8


def check_path(path: str | Path) -> Path:
    """Fail early, in one line, on the input problems a user makes most often (see :mod:`emollama.validate`)."""
    return check_input_file(path, directory_hint="give a media file (or use --manifest for many clips)")


@dataclass
class MediaReader:
    """Opens and validates one media file; decodes it lazily, as often as asked, with bounded memory."""

    path: Path
    max_duration_s: float = DEFAULT_MAX_DURATION_S
    info: MediaInfo = field(init=False)
    warnings: list[str] = field(default_factory=list, init=False)
    #: How long the picture itself should last (its stream's own duration when declared), for the
    #: "stopped early" check: the container's duration also covers audio that starts late.
    _video_expected_s: float = field(default=0.0, init=False, repr=False)
    #: Which audio stream is the voice (see :func:`_audio_stream`).
    _audio_index: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        check_max_duration(self.max_duration_s)
        self.path = check_path(self.path)
        if self.path.suffix.lower() in IMAGE_SUFFIXES:
            self.info = self._probe_image()
        else:
            self.info = self._probe_av()

    # ------------------------------------------------------------------ probing
    def _probe_image(self) -> MediaInfo:
        try:
            with _QuietBombWarning(), Image.open(self.path) as im:
                im.verify()
            with _QuietBombWarning(), Image.open(self.path) as im:  # header only: no pixels decoded here
                width, height = im.size
                if im.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
                    width, height = height, width
                frames = getattr(im, "n_frames", 1) if getattr(im, "is_animated", False) else 1
        except Image.DecompressionBombError:
            raise InputTooLongError(f"{self.path}: image is too large to analyse safely (over "
                                    f"{Image.MAX_IMAGE_PIXELS // 1_000_000} megapixels)") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise MediaDecodeError(f"{self.path}: not a readable image ({exc})") from None
        if frames > 1:
            self.warnings.append(f"animated image with {frames} frames: only the first frame was analysed "
                                 "(convert it to a video to analyse all of them)")
        if width * height > Image.MAX_IMAGE_PIXELS:
            self.warnings.append(f"the image has {width * height / 1e6:.0f} megapixels; it was analysed reduced to "
                                 f"{MAX_FRAME_SIDE} px on its long side")
        return MediaInfo(path=str(self.path), kind="image", duration_s=0.0, has_video=True,
                         has_audio=False, width=width, height=height)

    def _open(self) -> av.container.InputContainer:
        try:
            return av.open(str(self.path), metadata_errors="ignore")
        except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            raise MediaDecodeError(
                f"{self.path}: cannot decode - not a media file, or corrupt ({_short(exc)})"
            ) from None

    def _probe_av(self) -> MediaInfo:
        with self._open() as container:
            video = _video_stream(container)
            audio = _audio_stream(container)
            self._audio_index = audio.index if audio is not None else 0
            self.warnings.extend(_ignored_streams(container, audio))
            if video is None and audio is None:
                raise MediaDecodeError(
                    f"{self.path}: no decodable video or audio stream (corrupt, or not a media file)")
            duration = _duration_s(container, video, audio)
            if duration is not None and duration > self.max_duration_s:
                raise InputTooLongError(
                    f"{self.path}: {_duration_text(duration)} is longer than the limit of "
                    f"{_duration_text(self.max_duration_s)}; cut the clip or raise --max-duration"
                )
            fps = float(video.average_rate) if video is not None and video.average_rate else None
            self._video_expected_s = _video_expected_s(container, video, audio, duration)
            return MediaInfo(
                path=str(self.path),
                kind="video" if video is not None else "audio",
                duration_s=float(duration or 0.0),
                has_video=video is not None,
                has_audio=audio is not None,
                width=video.codec_context.width if video is not None else None,
                height=video.codec_context.height if video is not None else None,
                native_fps=fps,
            )

    # ------------------------------------------------------------------ frames
    def frames(self, fps: float = DEFAULT_FPS) -> Iterator[Frame]:
        """Yield RGB frames sampled at ``fps`` (all frames when the video is slower than that)."""
        check_fps(fps)
        if self.info.kind == "image":
            yield Frame(0, 0.0, self._image_rgb())
            return
        if not self.info.has_video:
            return
        step = 1.0 / fps
        next_t = 0.0
        index = 0
        with self._open() as container:
            stream = _video_stream(container)
            assert stream is not None
            stream.thread_type = "AUTO"
            last_t = 0.0
            for frame in self._decode(container, stream, "video"):
                t = _frame_time(frame, stream)
                if t is None:
                    t = index * step
                if t > self.max_duration_s:
                    raise InputTooLongError(
                        f"{self.path}: video runs past the limit of {_duration_text(self.max_duration_s)}; "
                        "cut the clip or raise --max-duration"
                    )
                last_t = max(last_t, t)
                if t + 1e-6 < next_t:
                    continue
                next_t = max(next_t + step, t + step * 0.5)
                yield Frame(index, t, _limit_size(_upright(frame)))
                index += 1
        if index == 0:
            raise MediaDecodeError(f"{self.path}: the video stream has no decodable frame")
        expected = self._video_expected_s
        if expected > 0 and last_t < expected - max(1.0, 0.1 * expected):
            self.warnings.append(f"the video stream stops at {last_t:.1f} s although the file says it lasts "
                                 f"{expected:.1f} s (truncated?); analysed what was there")

    def _image_rgb(self) -> np.ndarray:
        """The still image as 8-bit RGB, upright (EXIF orientation), small faces enlarged."""
        try:
            with _QuietBombWarning(), Image.open(self.path) as im:
                im = _reduced_upright(im)
                if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                    # 16/32-bit greyscale: scale to 8 bits instead of clipping to white.
                    arr = np.asarray(im, dtype=np.float64)
                    hi = arr.max() if arr.max() > 0 else 1.0
                    im = Image.fromarray((arr / hi * 255.0).astype(np.uint8))
                rgb = im.convert("RGB")
                if max(rgb.size) < MIN_IMAGE_SIDE:
                    # FER-style 48x48 crops are too small for the face mesh; enlarge them.
                    scale = MIN_IMAGE_SIDE / max(rgb.size)
                    rgb = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.BICUBIC)
                return _limit_size(np.asarray(rgb))
        except (OSError, ValueError, SyntaxError) as exc:
            raise MediaDecodeError(f"{self.path}: image cannot be decoded ({_short(exc)})") from None

    # ------------------------------------------------------------------ audio
    def audio(self, sample_rate: int = AUDIO_RATE) -> np.ndarray | None:
        """The whole audio track as mono float32 at ``sample_rate``, or None if there is none.

        Sample 0 is the moment of the first video frame (time 0 of :meth:`frames`), so speech
        times and frame times share one clock: audio that starts later than the picture is
        preceded by silence, audio that starts earlier loses its head.
        """
        if not self.info.has_audio:
            return None
        limit = int(self.max_duration_s * sample_rate)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks: list[np.ndarray] = []
        n = 0
        offset_s = 0.0
        with self._open() as container:
            stream = container.streams[self._audio_index]
            video = _video_stream(container) if self.info.has_video else None
            video_start = _stream_start_s(video)
            for frame in self._decode(container, stream, "audio"):
                if not chunks and frame.pts is not None and video_start is not None:
                    offset_s = float(frame.pts * (frame.time_base or stream.time_base)) - video_start
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    n += chunk.size
                if n > limit:
                    raise InputTooLongError(
                        f"{self.path}: audio runs past the limit of {_duration_text(self.max_duration_s)}; "
                        "cut the clip or raise --max-duration"
                    )
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        if not chunks:
            self.warnings.append("the audio stream has no decodable samples; voice is not used")
            return None
        audio = np.concatenate(chunks).astype(np.float32, copy=False)
        shift = round(offset_s * sample_rate)
        if abs(shift) > limit:  # broken or wrapped timestamps: do not trust them
            self.warnings.append(f"the audio stream's start time ({offset_s:+.1f} s from the picture) is not "
                                 "plausible; audio is taken as starting with the picture")
        elif shift > sample_rate // 100:  # more than 10 ms late (codec priming is smaller): pad
            audio = np.concatenate([np.zeros(shift, dtype=np.float32), audio])
        elif shift < -(sample_rate // 100):
            audio = audio[-shift:]
            if audio.size < sample_rate // 100:
                self.warnings.append("the audio track ends before the picture starts; voice is not used")
                return None
        return audio

    def _decode(self, container: av.container.InputContainer, stream: av.stream.Stream,
                what: str) -> Iterator[av.frame.Frame]:
        """Decode a stream; a file that breaks off mid-way keeps what decoded, with a warning."""
        decoded = 0
        try:
            for packet in container.demux(stream):
                for frame in packet.decode():
                    decoded += 1
                    yield frame
        except av.error.FFmpegError as exc:
            if decoded == 0:
                raise MediaDecodeError(
                    f"{self.path}: cannot decode the {what} stream - corrupt or truncated ({_short(exc)})"
                ) from None
            self.warnings.append(
                f"the {what} stream is damaged after {decoded} decoded frames; analysed what was readable"
            )


def _video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream | None:
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:  # cover art is not video
            return stream
    return None


def _audio_stream(container: av.container.InputContainer) -> av.audio.stream.AudioStream | None:
    """The voice track: the one marked default when the file marks one, else the first."""
    streams = list(container.streams.audio)
    return next((s for s in streams if s.disposition & av.stream.Disposition.default), streams[0] if streams else None)


def _ignored_streams(container: av.container.InputContainer, audio: av.stream.Stream | None) -> list[str]:
    """Warnings for the parts of a file the analysis does not use (never dropped without a word)."""
    out = []
    others = [s for s in container.streams.audio if audio is not None and s.index != audio.index]
    if others:
        out.append(f"the file has {len(others) + 1} audio streams; only stream {audio.index} "
                   f"({'marked default' if audio.disposition & av.stream.Disposition.default else 'the first'}) "
                   "was analysed")
    if container.streams.subtitles:
        out.append(f"the file has {len(container.streams.subtitles)} embedded subtitle track(s), which are not "
                   "read; extract one (ffmpeg -i IN -map 0:s:0 subs.srt) and pass it with --subtitle")
    return out


def _duration_s(container: av.container.InputContainer, video: av.stream.Stream | None,
                audio: av.stream.Stream | None) -> float | None:
    """The longest duration the container or any of its two streams declares (None when none does).

    The longest, so a file whose audio runs past its picture is refused up front, from its metadata,
    instead of after the face stage has worked through the whole video.
    """
    known = []
    if container.duration is not None and container.duration > 0:
        known.append(container.duration / av.time_base)
    for stream in (video, audio):
        if stream is not None and stream.duration and stream.time_base:
            known.append(float(stream.duration * stream.time_base))
    return max(known) if known else None


def _video_expected_s(container: av.container.InputContainer, video: av.stream.Stream | None,
                      audio: av.stream.Stream | None, duration: float | None) -> float:
    """The picture's own length: its stream's duration, else the file's less any late start of the audio."""
    if video is None:
        return 0.0
    if video.duration and video.time_base:
        return float(video.duration * video.time_base)
    late = (_stream_start_s(audio) or 0.0) - (_stream_start_s(video) or 0.0) if audio is not None else 0.0
    return max(0.0, float(duration or 0.0) - max(0.0, late))


def _stream_start_s(stream: av.stream.Stream | None) -> float | None:
    """When a stream starts on the container clock, in seconds (None without a stream or timestamp)."""
    if stream is None or stream.start_time is None or not stream.time_base:
        return None
    return float(stream.start_time * stream.time_base)


def _frame_time(frame: av.VideoFrame, stream: av.stream.Stream) -> float | None:
    if frame.pts is None:
        return None
    base = frame.time_base or stream.time_base or Fraction(1, 1)
    start = stream.start_time or 0
    return max(0.0, float((frame.pts - start) * base))


def _upright(frame: av.VideoFrame) -> np.ndarray:
    """RGB pixels turned upright by the stream's display rotation (phone videos are stored sideways)."""
    rgb = frame.to_ndarray(format="rgb24")
    try:
        rotation = int(round(frame.rotation or 0)) % 360
    except (AttributeError, TypeError, ValueError):
        rotation = 0
    if rotation in (90, 180, 270):
        # Display-matrix angles are counter-clockwise; np.rot90 with k turns counter-clockwise too.
        rgb = np.ascontiguousarray(np.rot90(rgb, k=rotation // 90))
    return rgb


_EXIF_ORIENTATION = 0x0112
_ORIENT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
           5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
           8: Image.Transpose.ROTATE_90}


class _QuietBombWarning(warnings.catch_warnings):
    """PIL warns on stderr about images over its pixel limit; the result's own warning says it instead."""

    def __enter__(self) -> None:  # type: ignore[override]
        super().__enter__()
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)


def _reduced_upright(im: Image.Image) -> Image.Image:
    """The image upright (EXIF orientation), decoded at a reduced scale when it is far larger than needed.

    Why: a 100-megapixel photo decoded whole, then transposed and converted, peaked at 3 GB. JPEGs
    are decoded directly at 1/2-1/8 scale (``draft``), others box-reduced by an integer factor, to no
    less than twice :data:`MAX_FRAME_SIDE`, before any copy; images up to that size are untouched.
    """
    orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
    target = 2 * MAX_FRAME_SIDE
    if max(im.size) > target:
        im.draft("RGB", (target, target))
        factor = max(im.size) // target
        if factor >= 2:
            im = im.reduce(factor)
        transpose = _ORIENT.get(orientation)
        return im.transpose(transpose) if transpose is not None else im
    return ImageOps.exif_transpose(im)


def _limit_size(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    side = max(h, w)
    if side <= MAX_FRAME_SIDE:
        return np.ascontiguousarray(rgb)
    scale = MAX_FRAME_SIDE / side
    size = (max(1, math.floor(w * scale)), max(1, math.floor(h * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
