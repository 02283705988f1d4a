"""``emollama eval-model`` on small generated manifests: metrics, failures, uncovered classes, files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from emollama.cli import app
from emollama.evaluate.eval_model import evaluate_model, write_outputs


class KeywordPredictor:
    """A transparent rule (used only to test the evaluator's bookkeeping): 'happy' if 'yay' in the text."""

    name = "keyword rule"
    classes = ("happy", "sad", "neutral")

    def __call__(self, text: str) -> np.ndarray:
        if "boom" in text:
            raise ValueError("cannot read this one")
        return np.array([0.8, 0.1, 0.1]) if "yay" in text else np.array([0.1, 0.8, 0.1])


def _manifest(tmp_path: Path) -> Path:
    rows = ["text,label", "yay great,Happiness", "yay yay,joy", "oh no,sadness", "so sad,sad",
            "yay,sad", "whatever,bored", "boom,happy", "fine,grumpy"]
    p = tmp_path / "m.csv"
    p.write_text("\n".join(rows) + "\n")
    return p


def test_metrics_failures_and_uncovered_classes(tmp_path: Path):
    out = evaluate_model("text", _manifest(tmp_path), predictor=KeywordPredictor())
    data = out.to_json()
    # 8 rows: 'boom' fails in the model, 'grumpy' is no known spelling -> 6 scored, 2 listed.
    assert data["n"] == 6 and data["n_failed"] == 2
    assert {f["row"] for f in data["failed"]} == {8, 9}
    # 'bored' is not among the model's classes: reported and scored wrong, never renamed.
    assert data["classes_not_covered"] == {"bored": 1}
    # correct: 2 happy + 2 sad = 4 of 6
    assert data["accuracy"] == pytest.approx(4 / 6, abs=1e-4)
    assert data["per_class_recall"]["happy"] == 1.0
    assert data["per_class_recall"]["sad"] == pytest.approx(2 / 3, abs=1e-3)
    assert data["per_class_recall"]["bored"] == 0.0
    paths = write_outputs(out, tmp_path / "out")
    assert json.loads(paths["metrics"].read_text())["n"] == 6
    assert paths["confusion"].stat().st_size > 1000


def test_label_set_projection_moves_scores(tmp_path: Path):
    out = evaluate_model("text", _manifest(tmp_path), label_set="mer6", predictor=KeywordPredictor())
    assert out.classes == ("neutral", "angry", "happy", "sad", "worried", "surprise")
    assert out.to_json()["classes_not_covered"] == {"bored": 1}


def test_cli_face_on_generated_images(tmp_path: Path):
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (48, 48), dtype=np.uint8)).save(tmp_path / f"crop{i}.png")
    Image.fromarray(np.full((300, 300, 3), 127, np.uint8)).save(tmp_path / "blank_photo.png")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    (tmp_path / "m.csv").write_text("path,label\ncrop0.png,angry\ncrop1.png,surprised\ncrop2.png,worried\n"
                                    "blank_photo.png,happy\nbroken.png,sad\nmissing.png,fear\n")
    res = CliRunner().invoke(app, ["eval-model", "face", "--manifest", str(tmp_path / "m.csv"),
                                   "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert data["n"] == 3 and data["n_failed"] == 3
    reasons = {f["item"]: f["reason"] for f in data["failed"]}
    assert "no face" in reasons["blank_photo.png"] and "not found" in reasons["missing.png"]
    assert data["classes_not_covered"] == {"worried": 1}  # the face head has no worried class
    assert (tmp_path / "out" / "confusion.png").is_file()
    assert "failed" in res.output


def test_cli_rejects_a_manifest_without_labels(tmp_path: Path):
    (tmp_path / "m.csv").write_text("path\na.png\n")
    res = CliRunner().invoke(app, ["eval-model", "face", "--manifest", str(tmp_path / "m.csv"),
                                   "--out", str(tmp_path / "o")])
    assert res.exit_code != 0


def test_clip_runs_the_whole_pipeline(perceiver, tmp_path: Path):
    """The bundled example clip is a smiling, happy-sounding speaker; a missing clip is a listed failure."""
    from emollama.evaluate.eval_model import ClipPredictor
    from tests.clips import EXAMPLE

    (tmp_path / "m.csv").write_text(f"path,label\n{EXAMPLE},Happiness\nnope.mp4,sad\n")
    out = evaluate_model("clip", tmp_path / "m.csv", "mer6", predictor=ClipPredictor("mer6", perceiver))
    data = out.to_json()
    assert data["n"] == 1 and data["n_failed"] == 1 and data["accuracy"] == 1.0
    assert data["classes"] == ["neutral", "angry", "happy", "sad", "worried", "surprise"]


def test_each_kind_scores_exactly_what_analyze_perceives(perceiver, tmp_path: Path):
    """face on a photo, voice and text: eval-model's probabilities are the ones analyze fuses.

    (Before 2026-12-01 ``eval-model voice`` gave the head the whole waveform while ``analyze`` gives
    it only the VAD speech, so the measured path was not the shipped one.)
    """
    from emollama.evaluate.eval_model import _FacePredictor, _TextPredictor, _VoicePredictor
    from tests.clips import EXAMPLE, example_frames

    p = perceiver.perceive(EXAMPLE)
    assert p.voice_probs and _VoicePredictor()(EXAMPLE) == p.voice_probs

    photo = tmp_path / "photo.png"
    Image.fromarray(example_frames(limit=1)[0]).save(photo)
    face = _FacePredictor()(photo)
    assert face and face == perceiver.perceive(photo).face.expression_probs

    text = "I am so worried about tomorrow"
    probs = _TextPredictor()(text)
    assert probs == perceiver.text.analyze(text)[0]
    assert probs["worried"] > 0  # the cue mass analyze adds for a label the head has no class for


class AnswerPredictor:
    """A generative tier's bookkeeping: a label, or UNPARSED when its answer names none."""

    name = "fixed answers"
    classes = ("happy", "sad", "neutral")

    def __call__(self, text: str):  # noqa: ANN204
        from emollama.evaluate.eval_model import UNPARSED

        return {UNPARSED: 1.0} if "mumble" in text else {"happy" if "yay" in text else "sad": 1.0}


def test_an_unparsed_answer_counts_as_wrong_not_as_skipped(tmp_path: Path):
    p = tmp_path / "m.csv"
    p.write_text("text,label\nyay,happy\nmumble,happy\nno,sad\nmumble yay,sad\n")
    for label_set in (None, "dfew7"):  # with --labels too: projection must not turn it into a label
        data = evaluate_model("text", p, label_set, predictor=AnswerPredictor()).to_json()
        assert data["n"] == 4 and data["n_failed"] == 0
        assert data["accuracy"] == pytest.approx(0.5)  # 2 right, 2 unparsed
        assert "<unparsed>" in data["confusion_matrix"]["rows"]


def test_cli_rejects_model_without_emotion_llama_tier(tmp_path: Path):
    from tests.test_cli import assert_one_line_error, run_cli

    m = str(_manifest(tmp_path))
    proc = run_cli("eval-model", "text", "--manifest", m, "--out", str(tmp_path / "o"), "--model", str(tmp_path))
    assert_one_line_error(proc, "--model is for --tier emotion-llama")
    proc = run_cli("eval-model", "text", "--manifest", m, "--out", str(tmp_path / "o"), "--tier", "emotion-llama",
                   "--model", str(tmp_path))
    assert_one_line_error(proc, "no config.json")
