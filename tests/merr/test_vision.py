"""Vision-LLM scene descriptions: the request carries a real JPEG, replies are filtered, failures retried.

The loopback server decodes the image it receives and describes what it measures in it (size and
dominant colours), so a passing test shows the picture really travelled inside the request.
"""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from emollama.errors import InputError
from emollama.llm import LLMSpec, image_part, make_backend, request_key, text_part
from emollama.merr.inputs import ClipItem
from emollama.merr.record import read_record
from emollama.merr.report import write_report
from emollama.merr.runner import RunConfig, run_annotation
from emollama.merr.vision import VisionDescriber, check_description, encode_jpeg
from tests.clips import EXAMPLE

GOOD_FINE = ("At the most expressive moment the corners of the mouth pull up strongly and the cheeks rise (AU12), "
             "a clear smile. The voice is joyful and the person says the news is wonderful. "
             "Therefore the emotion is happy.")


def sent_image(body: dict) -> Image.Image | None:
    """The JPEG inside a chat request, decoded the way a vision server would (None for text-only requests)."""
    for message in body["messages"]:
        if isinstance(message["content"], list):
            for part in message["content"]:
                if part["type"] == "image_url":
                    header, _, payload = part["image_url"]["url"].partition(",")
                    assert header == "data:image/jpeg;base64"
                    image = Image.open(io.BytesIO(base64.b64decode(payload, validate=True)))
                    image.load()
                    return image
    return None


def describe_what_arrived(body: dict) -> str:
    """What a vision model would say, computed from the pixels it actually received."""
    image = sent_image(body)
    assert image is not None and image.format == "JPEG"
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    half = rgb.shape[1] // 2
    names = ("red", "green", "blue")
    left, right = (names[int(np.argmax(side.reshape(-1, 3).mean(0)))] for side in (rgb[:, :half], rgb[:, half:]))
    return (f"The picture is {image.width} by {image.height} pixels. Its left half is mostly {left} and its "
            f"right half is mostly {right}, evenly lit, with no text in view.")


def two_colour_frame(left: tuple[int, int, int], right: tuple[int, int, int], w: int = 1280, h: int = 720):
    frame = np.zeros((h, w, 3), np.uint8)
    frame[:, : w // 2] = left
    frame[:, w // 2:] = right
    return frame


def test_request_carries_a_bounded_jpeg_and_the_cache_keys_on_its_bytes(chat_server, tmp_path) -> None:
    chat_server.reply = describe_what_arrived
    cache = tmp_path / "cache"
    describer = VisionDescriber(make_backend(LLMSpec(chat_server.url, "vlm", timeout_s=5, max_retries=0,
                                                     cache_dir=str(cache))))
    red_blue = two_colour_frame((200, 20, 20), (20, 20, 200))
    vd = describer.describe(red_blue, 1.25)
    assert vd.status == "ok" and vd.source == "llm" and vd.model == "merr-test-llm"
    assert "768 by 432" in vd.text and "left half is mostly red" in vd.text and "right half is mostly blue" in vd.text
    assert vd.image_size == [768, 432] and vd.frame_time_s == 1.25 and vd.attempts == 1
    body = chat_server.requests[0]
    assert body["model"] == "vlm" and body["messages"][1]["content"][0]["type"] == "text"
    assert "do not guess what they feel" in body["messages"][1]["content"][0]["text"].lower()
    assert len(base64.b64decode(body["messages"][1]["content"][1]["image_url"]["url"].split(",")[1])) == vd.image_bytes

    assert describer.describe(red_blue, 1.25).text == vd.text
    assert len(chat_server.requests) == 1  # same picture: served from the cache
    green_red = describer.describe(two_colour_frame((20, 200, 20), (200, 20, 20)), 1.25)
    assert len(chat_server.requests) == 2 and "mostly green" in green_red.text  # new picture, same text: new key
    files = list(cache.rglob("*.json"))
    assert len(files) == 2
    stored = "".join(f.read_text(encoding="utf-8") for f in files)
    sent = base64.b64decode(body["messages"][1]["content"][1]["image_url"]["url"].split(",")[1])
    assert f"sha256:{hashlib.sha256(sent).hexdigest()}" in stored  # the digest of the bytes sent...
    assert "base64" not in stored  # ...not the payload


def test_request_key_includes_image_bytes_and_keeps_text_keys() -> None:
    jpeg_a, _, _ = encode_jpeg(two_colour_frame((255, 0, 0), (0, 0, 255), 64, 32))
    jpeg_b, _, _ = encode_jpeg(two_colour_frame((0, 255, 0), (0, 0, 255), 64, 32))

    def key(jpeg: bytes) -> str:
        return request_key("m", [{"role": "user", "content": [text_part("describe"), image_part(jpeg)]}], 0.0, 99)

    assert key(jpeg_a) == key(jpeg_a) and key(jpeg_a) != key(jpeg_b)
    assert key(b"\xff\xd8" + b"a" * 99) != key(b"\xff\xd8" + b"b" * 99)  # same size, other bytes
    # A text-only request hashes exactly as it did before content parts existed (old caches stay valid).
    canonical = '{"max_tokens":10,"messages":[{"content":"x","role":"user"}],"model":"m","temperature":0.0}'
    assert request_key("m", [{"role": "user", "content": "x"}], 0, 10) == hashlib.sha256(canonical.encode()).hexdigest()


def test_jpeg_is_bounded_and_small_frames_keep_their_size() -> None:
    jpeg, w, h = encode_jpeg(two_colour_frame((9, 9, 9), (250, 250, 250), 600, 1900))
    assert (w, h) == (243, 768) and Image.open(io.BytesIO(jpeg)).size == (243, 768)  # 600 * 768 / 1900 = 242.5
    _, w, h = encode_jpeg(two_colour_frame((9, 9, 9), (250, 250, 250), 320, 240))
    assert (w, h) == (320, 240)


@pytest.mark.parametrize(("text", "code"), [
    ("", "empty"), ("  \n ", "empty"), ("Error: model does not support images", "error_text"),
    ("NO IMAGE", "no_image"), ("I'm sorry, but I can't see any image in your message.", "no_image"),
    ("As a text-based AI I have no way to look at pictures, but a typical scene might be an office.", "no_image"),
    ("No image was attached to the request, so there is nothing to describe here.", "no_image"),
    ("I'm sorry, I won't describe people in pictures.", "refusal"),
    ("A man indoors.", "too_short"),
    ("A man sits in a room. " * 6, "degenerate"),
    ("A woman in her thirties with dark curly hair and a blue jacket sits by a window; she is not looking at "
     "the camera in this image, and daylight comes from the left.", "ok"),
])
def test_description_filter(text: str, code: str) -> None:
    assert check_description(text)[1] == code


def test_garbage_empty_and_text_only_replies_keep_the_measured_description(chat_server, tmp_path) -> None:
    describer = VisionDescriber(make_backend(LLMSpec(chat_server.url, "vlm", timeout_s=5, max_retries=0,
                                                     cache_dir=str(tmp_path / "cache"))))
    frame = two_colour_frame((120, 120, 120), (130, 130, 130), 320, 240)
    chat_server.reply = lambda body: ("garbage", None)
    vd = describer.describe(frame, 0.0)
    assert vd.status == "llm_error" and vd.text is None and "not JSON" in vd.reason and vd.model == "vlm"
    assert not list((tmp_path / "cache").rglob("*.json"))
    chat_server.reply = lambda body: ""
    vd = describer.describe(frame, 0.0)
    assert vd.status == "filtered" and vd.text is None and vd.reason.startswith("empty")
    assert describer.describe(None, None).status == "skipped"  # audio-only clip: nothing is sent
    assert len(chat_server.requests) == 2


def test_annotate_with_vision_end_to_end_and_retry_after_garbage(perceiver, chat_server, tmp_path) -> None:
    def reply(body: dict) -> object:
        if sent_image(body) is not None:
            return ("garbage", None)
        return GOOD_FINE

    chat_server.reply = reply
    spec = LLMSpec(chat_server.url, "vlm", timeout_s=5, max_retries=0, cache_dir=str(tmp_path / "cache"))
    config = RunConfig(llm=spec, vision=True)
    items = [ClipItem("astronaut_happy", EXAMPLE, None, "happy", "Happy")]
    out = tmp_path / "out"
    run_annotation(items, out, config, perceiver=perceiver)
    rec = read_record(out / "clips" / "astronaut_happy.json")
    vd = rec.coarse.visual_description
    assert vd is not None and vd.status == "llm_error" and vd.text is None
    assert rec.coarse.visual_objective["source"] == "measured"
    assert rec.coarse.caption.startswith(rec.coarse.visual_objective["text"].rstrip(".")), rec.coarse.caption
    assert rec.fine.status == "ok" and abs(vd.frame_time_s - rec.coarse.peak.time_s) < 1e-6
    first_jpeg = [sent_image(b) for b in chat_server.requests if sent_image(b) is not None][0]

    chat_server.reply = lambda body: describe_what_arrived(body) if sent_image(body) is not None else GOOD_FINE
    n_before = len(chat_server.requests)
    stats = run_annotation(items, out, config, perceiver=perceiver)
    assert stats["to_do"] == 0 and stats["vision_retried"] == 1  # perception is not redone
    rec = read_record(out / "clips" / "astronaut_happy.json")
    vd = rec.coarse.visual_description
    assert vd.status == "ok" and vd.attempts == 2 and vd.model == "merr-test-llm"
    assert f"{vd.image_size[0]} by {vd.image_size[1]} pixels" in vd.text
    assert rec.coarse.caption.startswith(vd.text) and rec.coarse.visual_objective["faces"] == 1
    retried = [b for b in chat_server.requests[n_before:] if sent_image(b) is not None]
    assert len(retried) == 1
    again = sent_image(retried[0])
    assert again.size == first_jpeg.size
    assert np.abs(np.asarray(again, np.int16) - np.asarray(first_jpeg, np.int16)).mean() < 1.0  # same frame
    fine_prompts = [b["messages"][1]["content"] for b in chat_server.requests[n_before:] if sent_image(b) is None]
    assert len(fine_prompts) == 1 and vd.text in fine_prompts[0]  # the fine step saw the new description
    assert rec.fine.status == "ok" and rec.fine.source == "llm"
    md, _png = write_report(tmp_path / "report", [rec], [], stats)
    assert "## Vision descriptions of the peak frame" in md.read_text(encoding="utf-8")
    assert "| ok | 1 |" in md.read_text(encoding="utf-8")


def test_vision_needs_an_http_backend(tmp_path, tiny_clips) -> None:
    from emollama.cli import app

    with pytest.raises(InputError, match="needs --llm"):
        run_annotation([], tmp_path, RunConfig(vision=True))
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(InputError, match="http"):
        run_annotation([], tmp_path, RunConfig(llm=LLMSpec(str(gguf)), vision=True))
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "grey.mp4").write_bytes(Path(tiny_clips["grey"]).read_bytes())
    runner = CliRunner()
    res = runner.invoke(app, ["annotate", str(clips), "-o", str(tmp_path / "o"), "--llm-vision"])
    assert res.exit_code != 0 and "needs --llm" in str(res.exception)
    res = runner.invoke(app, ["annotate", str(clips), "-o", str(tmp_path / "o"), "--llm", str(gguf), "--llm-vision"])
    assert res.exit_code != 0 and "reads text only" in str(res.exception)
