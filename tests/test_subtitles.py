from __future__ import annotations

from pathlib import Path

import pytest

from emollama.errors import SubtitleError
from emollama.media.subtitles import resolve_subtitle

SRT = """1
00:00:00,000 --> 00:00:01,500
<i>Won't you?</i> Impossible!

2
00:00:01,600 --> 00:00:03,000
She is not such a person.
"""

VTT = """WEBVTT

00:00.000 --> 00:01.500
Oh no, my wallet

NOTE this is a comment

00:01.600 --> 00:03.000
{\\an8}is in the bag.
"""


def test_literal_text_is_used_as_is():
    assert resolve_subtitle("  I am   so happy ") == "I am so happy"
    assert resolve_subtitle(None) is None


def test_srt(tmp_path: Path):
    p = tmp_path / "a.srt"
    p.write_text(SRT, encoding="utf-8")
    assert resolve_subtitle(str(p)) == "Won't you? Impossible! She is not such a person."


def test_vtt(tmp_path: Path):
    p = tmp_path / "a.vtt"
    p.write_text(VTT, encoding="utf-8")
    assert resolve_subtitle(str(p)) == "Oh no, my wallet is in the bag."


def test_txt_utf16_and_chinese(tmp_path: Path):
    p = tmp_path / "a.txt"
    p.write_text("走了 我手机钱包都在包里", encoding="utf-16")
    assert resolve_subtitle(str(p)) == "走了 我手机钱包都在包里"


def test_missing_subtitle_file(tmp_path: Path):
    with pytest.raises(SubtitleError, match="no such file"):
        resolve_subtitle(str(tmp_path / "missing.srt"))


def test_binary_subtitle_file(tmp_path: Path):
    p = tmp_path / "a.srt"
    p.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(SubtitleError):
        resolve_subtitle(str(p))


def test_subtitle_file_without_text(tmp_path: Path):
    p = tmp_path / "a.srt"
    p.write_text("1\n00:00:00,000 --> 00:00:01,000\n\n", encoding="utf-8")
    with pytest.raises(SubtitleError, match="no subtitle text"):
        resolve_subtitle(str(p))


def test_latin1_subtitle_is_not_read_as_chinese(tmp_path: Path):
    p = tmp_path / "fr.srt"
    p.write_bytes("1\n00:00:00,000 --> 00:00:01,000\nJe suis très heureux, ça va!\n".encode("latin-1"))
    assert resolve_subtitle(str(p)) == "Je suis très heureux, ça va!"


def test_gbk_subtitle_is_read_as_chinese(tmp_path: Path):
    p = tmp_path / "zh.txt"
    p.write_bytes("我的手机和钱包都在包里".encode("gbk"))
    assert resolve_subtitle(str(p)) == "我的手机和钱包都在包里"
