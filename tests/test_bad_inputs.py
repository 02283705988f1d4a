"""A bad-input corpus for the command line: every case ends in one project line, exit 2, nothing destroyed.

Each case is generated here (tiny files) and checked the same way: the exit status is 2, the first
stderr line is the project's own ``error:`` line (never a traceback), the command ends well within
its timeout, every file that existed before is byte-for-byte unchanged, and no output is left
half-written. All of these fail before any model loads.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.clips import EXAMPLE

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 120


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "emollama", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)


def snapshot(folder: Path) -> dict[str, str]:
    """Every regular file under ``folder`` → its SHA-256 (FIFOs and devices are skipped, not read)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink() or not p.is_file():
            continue
        out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def assert_refused(tmp: Path, args: list[str], fragment: str) -> None:
    before = snapshot(tmp)
    proc = run_cli(*args)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert err and err[0].startswith("error:"), proc.stderr
    assert fragment in " ".join(err), proc.stderr
    assert snapshot(tmp) == before  # inputs unchanged, nothing new (no partial output) written


def clip(tmp: Path, name: str = "clip.mp4") -> Path:
    return Path(shutil.copy(EXAMPLE, tmp / name))


def manifest(tmp: Path, name: str = "m.csv") -> Path:
    clip(tmp)
    m = tmp / name
    m.write_text("path\nclip.mp4\n")
    return m


CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    # 1. an output that is the input
    "json-onto-the-input": (lambda t: ["analyze", str(clip(t)), "--json", str(t / "clip.mp4")], "--json"),
    "json-onto-the-subtitle": (lambda t: ["analyze", str(clip(t)), "--subtitle", str(_srt(t)),
                                          "--json", str(t / "s.srt")], "--json"),
    # 2. a batch output holding something else
    "out-is-a-csv": (lambda t: ["analyze", "--manifest", str(manifest(t)), "--out", str(_csv_jsonl(t))],
                     "not a record"),
    "out-is-the-manifest": (lambda t: ["analyze", "--manifest", str(manifest(t, "m.jsonl")), "--out",
                                       str(t / "m.jsonl")], "is also an input"),
    # 5. / 7. subtitles that are not readable files
    "subtitle-fifo": (lambda t: ["analyze", str(clip(t)), "--subtitle", str(_fifo(t / "sub.srt"))], "FIFO"),
    "subtitle-dev-zero": (lambda t: ["analyze", str(clip(t)), "--subtitle", str(_link(t / "z.srt", "/dev/zero"))],
                          "character device"),
    "subtitle-directory": (lambda t: ["analyze", str(clip(t)), "--subtitle", str(_dir(t / "subs"))],
                           "is a directory"),
    "subtitle-missing-ass": (lambda t: ["analyze", str(clip(t)), "--subtitle", str(t / "x.ass")], "not supported"),
    "subtitle-missing-path": (lambda t: ["analyze", str(clip(t)), "--subtitle", "./no/such/subtitle"],
                              "no such file"),
    # 12. outputs that cannot be written as asked
    "plot-not-png": (lambda t: ["analyze", str(clip(t)), "--plot", str(t / "x.txt")], ".png"),
    "json-and-plot-one-name": (lambda t: ["analyze", str(clip(t)), "--json", str(t / "a.json"), "--plot",
                                          str(t / "a.json")], "its own name"),
    "json-parent-is-a-file": (lambda t: ["analyze", str(clip(t)), "--json", str(_file(t / "f") / "r.json")],
                              "is a file, not a folder"),
    "json-onto-a-foreign-file": (lambda t: ["analyze", str(clip(t)), "--json", str(_file(t / "notes.json"))],
                                 "was not written by this command"),
    "manifest-cell-over-128k": (lambda t: ["analyze", "--manifest", str(_big_cell(t)), "--out", str(t / "o.jsonl")],
                                "field larger than field limit"),
    "long-file-name": (lambda t: ["analyze", str(t / ("x" * 300 + ".mp4"))], "longer than 255 bytes"),
    "evaluate-out-is-a-file": (lambda t: ["evaluate", "classification", "--pred", "p.csv", "--ref", "r.csv",
                                          "--out", str(_file(t / "o"))], "is an existing file"),
    "eval-model-out-is-a-file": (lambda t: ["eval-model", "face", "--manifest", "m.csv", "--out",
                                            str(_file(t / "o"))], "is an existing file"),
    # 13. clear messages for odd inputs
    "media-fifo": (lambda t: ["analyze", str(_fifo(t / "v.mp4"))], "FIFO"),
    "media-dev-zero": (lambda t: ["analyze", "/dev/zero"], "character device"),
    "media-symlink-loop": (lambda t: ["analyze", str(_loop(t / "loop.mp4"))], "symbolic link loop"),
    "manifest-is-a-directory": (lambda t: ["analyze", "--manifest", str(_dir(t / "d")), "--out", str(t / "o.jsonl")],
                                "is a directory"),
    # cases that already worked, kept so they stay so
    "missing-file": (lambda t: ["analyze", str(t / "missing.mp4")], "no such file"),
    "empty-file": (lambda t: ["analyze", str(_bytes(t / "empty.mp4", b""))], "empty"),
    "random-bytes": (lambda t: ["analyze", str(_bytes(t / "noise.mp4", os.urandom(4096)))], "cannot decode"),
    "truncated-mp4": (lambda t: ["analyze", str(_bytes(t / "cut.mp4", EXAMPLE.read_bytes()[:3000]))],
                      "cannot decode"),
    "media-directory": (lambda t: ["analyze", str(_dir(t / "clips"))], "is a directory"),
    "bad-fps": (lambda t: ["analyze", str(clip(t)), "--fps", "-1"], "--fps"),
    "bad-label-set": (lambda t: ["analyze", str(clip(t)), "--labels", "plutchik"], "unknown label set"),
    "out-not-jsonl": (lambda t: ["analyze", "--manifest", str(manifest(t)), "--out", str(t / "o.csv")], ".jsonl"),
    "annotate-old-labels-option": (lambda t: ["annotate", str(clip(t)), "-o", str(t / "ann"), "--labels",
                                              str(_file(t / "l.csv"))], "--label-file"),
}


def _bytes(p: Path, data: bytes) -> Path:
    p.write_bytes(data)
    return p


def _srt(t: Path) -> Path:
    p = t / "s.srt"
    p.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello there\n")
    return p


def _csv_jsonl(t: Path) -> Path:
    p = t / "table.jsonl"
    p.write_text("name,score\nalice,3\nbob,4\n")
    return p


def _fifo(p: Path) -> Path:
    os.mkfifo(p)
    return p


def _link(p: Path, target: str) -> Path:
    p.symlink_to(target)
    return p


def _loop(p: Path) -> Path:
    p.symlink_to(p)
    return p


def _dir(p: Path) -> Path:
    p.mkdir()
    return p


def _file(p: Path) -> Path:
    p.write_text('{"my": "notes"}\n')
    return p


def _big_cell(t: Path) -> Path:
    clip(t)
    p = t / "big.csv"
    p.write_text('path,subtitle\nclip.mp4,"' + "word " * 30_000 + '"\n')
    return p


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_refused_in_one_line_and_destroys_nothing(tmp_path: Path, case: str):
    make, fragment = CASES[case]
    args = make(tmp_path)
    assert_refused(tmp_path, args, fragment)


def test_a_second_writer_of_one_out_is_refused(tmp_path: Path):
    """Two runs on one --out used to both analyse every clip; the second is now refused at once."""
    from emollama.batch import exclusive_output

    m = manifest(tmp_path)
    out = tmp_path / "preds.jsonl"
    with exclusive_output(out):  # stands for a first run still at work
        assert_refused(tmp_path, ["analyze", "--manifest", str(m), "--out", str(out)], "another emollama run")
    assert not (tmp_path / ".preds.jsonl.lock").exists()


def test_a_crash_cut_last_line_is_repaired_but_nothing_else_is_dropped(tmp_path: Path):
    from emollama.batch import read_done
    from emollama.errors import InputError

    good = '{"key": "a.mp4", "status": "ok", "path": "/x/a.mp4"}\n'
    out = tmp_path / "preds.jsonl"
    out.write_text(good + '{"key": "b.mp4", "stat')
    assert read_done(out) == {"a.mp4"} and out.read_text() == good
    out.write_text(good + "a note someone typed\n" + good)
    before = out.read_bytes()
    with pytest.raises(InputError, match="line 2: not a record"):
        read_done(out)
    assert out.read_bytes() == before


def test_version():
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("emollama ")


def test_only_our_own_earlier_outputs_may_be_replaced(example_result, tmp_path: Path):
    """Rerunning ``analyze --json r.json --plot r.png`` replaces its own files; a user's JSON or PNG is not ours."""
    from PIL import Image

    from emollama.cli.analyze import is_emollama_result
    from emollama.visualize import is_emollama_plot, plot_result

    ours_json, ours_png = tmp_path / "r.json", tmp_path / "r.png"
    ours_json.write_text(example_result.model_dump_json())
    plot_result(example_result, ours_png)
    theirs_json, theirs_png = _file(tmp_path / "notes.json"), tmp_path / "photo.png"
    Image.new("RGB", (8, 8)).save(theirs_png)
    assert is_emollama_result(ours_json) and is_emollama_plot(ours_png)
    assert not is_emollama_result(theirs_json) and not is_emollama_plot(theirs_png)
    assert not is_emollama_result(_file(tmp_path / "broken.json").with_name("missing.json"))


def test_a_huge_subtitle_costs_bounded_time_and_says_it_was_cut(perceiver):
    """A 60,000-character subtitle (a 25-s case before the cap) is cut to the documented maximum, with a warning."""
    import time

    from emollama.perception.text_emotion import MAX_TRANSCRIPT_CHARS, limit_transcript

    text = "Ich bin so froh und doch traurig, wirklich sehr traurig heute. " * 1000
    t0 = time.perf_counter()
    p = perceiver.perceive(EXAMPLE, subtitle=text)
    assert time.perf_counter() - t0 < 90
    assert len(p.clues.words.text) <= MAX_TRANSCRIPT_CHARS
    assert any("only the first" in w for w in p.warnings)
    assert limit_transcript("short text") == ("short text", None)
    cut, warning = limit_transcript("abc " * 10, limit=10)
    assert cut == "abc abc" and "40 characters" in warning


def test_long_texts_are_embedded_in_pieces_short_ones_whole():
    """e5 chunking leaves every text up to 512 characters exactly as before and bounds the cost of longer ones."""
    import numpy as np

    from emollama.heads.text import E5Embedder

    class Recorder:
        def __init__(self) -> None:
            self.seen: list[str] = []

        def query(self, texts: list[str]) -> np.ndarray:
            self.seen += texts
            return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    rec = Recorder()
    emb = E5Embedder(rec)
    short = emb.embed(["a" * 512])
    assert rec.seen == ["a" * 512] and np.allclose(short, np.array([[512, 1]]) / np.hypot(512, 1))
    rec.seen.clear()
    emb.embed(["b" * 1100, "c"])
    assert [len(t) for t in rec.seen] == [512, 512, 76, 1]


def test_an_unreadable_file_is_named_as_such(tmp_path: Path, monkeypatch):
    """(The tests run as root, who may read anything: the permission answer is simulated.)"""
    from emollama.errors import InputError
    from emollama.validate import check_input_file

    f = clip(tmp_path)
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(InputError, match="permission denied"):
        check_input_file(f)
