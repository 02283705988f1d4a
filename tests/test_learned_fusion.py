"""The learned Conv-Attention fusion: training step, strict loading, masks, modality dropout,
the label-set blend, and the hand-set fusion's absence-of-evidence rule and face pooling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emollama.errors import InputError, ModelUnavailableError
from emollama.labels import get_label_set
from emollama.perception.face_clues import POOLING_METHODS, pool_expression
from emollama.recognize.conv_attention import (
    ConvAttentionConfig,
    ConvAttentionFusion,
    LearnedFusion,
    collate,
    onto_label_set,
)
from emollama.recognize.fusion import ModalityEvidence, emotional_content, fuse
from emollama.recognize.fusion_inputs import DIMS, FACE_LABELS, TEXT_LABELS, VOICE_LABELS, FusionInputs, face_sequence
from emollama.train.fusion.data import Sample, restrict
from emollama.train.fusion.recipe import TrainSettings, _drop_modalities, predict, train_head

LABELS = ConvAttentionConfig().labels


def _onehot_log(order: tuple[str, ...], label: str, sure: float = 0.8) -> np.ndarray:
    p = np.full(len(order), (1 - sure) / (len(order) - 1))
    if label in order:
        p[order.index(label)] = sure
    else:
        p[:] = 1 / len(order)
    return np.log(p).astype(np.float32)


def _sample(label: str, rng: np.random.Generator, *, face: bool = True, voice: bool = True,
            words: bool = False, noise: float = 0.6) -> Sample:
    x = FusionInputs.empty()
    if face:
        frames = np.exp(_onehot_log(FACE_LABELS, label) + rng.normal(0, noise, (6, len(FACE_LABELS))))
        x.face, x.face_frames = face_sequence(frames / frames.sum(1, keepdims=True))
        x.present["face"] = True
    if voice:
        v = np.zeros(DIMS["voice"], np.float32)
        v[:len(VOICE_LABELS)] = _onehot_log(VOICE_LABELS, label) + rng.normal(0, noise, len(VOICE_LABELS))
        x.voice, x.present["voice"] = v, True
    if words:
        x.words, x.present["words"] = _onehot_log(TEXT_LABELS, "neutral"), True
    return Sample(x, label, "pairs", "synthetic")


@pytest.fixture(scope="module")
def trained() -> ConvAttentionFusion:
    rng = np.random.default_rng(0)
    samples = [_sample(y, rng) for y in LABELS for _ in range(30)]
    torch.manual_seed(0)
    return train_head(samples, ConvAttentionConfig(width=32), TrainSettings(epochs=25, batch_size=32, seed=0))


def test_training_step_learns_a_separable_task(trained):
    rng = np.random.default_rng(1)
    held = [_sample(y, rng) for y in LABELS for _ in range(6)]
    preds = predict(trained, held)
    accuracy = np.mean([p == s.label for p, s in zip(preds, held, strict=True)])
    assert accuracy >= 0.85


def test_a_missing_modality_is_a_trained_case(trained):
    """Trained with modality dropout: the face alone, or the voice alone, still finds the label."""
    rng = np.random.default_rng(2)
    face_only = [_sample(y, rng, voice=False) for y in LABELS for _ in range(4)]
    voice_only = [_sample(y, rng, face=False) for y in LABELS if y != "surprise" for _ in range(4)]
    for held in (face_only, voice_only):
        preds = predict(trained, held)
        assert np.mean([p == s.label for p, s in zip(preds, held, strict=True)]) >= 0.7


def test_an_absent_modality_cannot_change_the_answer(trained):
    rng = np.random.default_rng(3)
    s = _sample("sad", rng, voice=False)
    before = trained(collate([s.inputs]))
    s.inputs.voice = rng.normal(0, 5, DIMS["voice"]).astype(np.float32)  # garbage behind a closed mask
    assert torch.allclose(trained(collate([s.inputs])), before)


def test_modality_dropout_hides_but_never_empties_or_invents():
    gen = torch.Generator().manual_seed(0)
    present = torch.tensor([[True, False, True, True]] * 2000)
    kept = _drop_modalities(present, 0.3, gen)
    assert not (kept & ~present).any()  # never turns on a modality the sample lacks
    assert kept.any(dim=1).all()  # never leaves a sample with nothing
    share = kept[:, [0, 2, 3]].float().mean().item()
    assert 0.65 < share < 0.78  # about 1 - p (a little more: emptied rows get one back)
    single = _drop_modalities(torch.tensor([[False, False, True, False]] * 50), 0.9, gen)
    assert single[:, 2].all()


def test_save_and_strict_load(trained, tmp_path):
    path = tmp_path / "head.pt"
    trained.save_pretrained(path, {"note": "test"})
    loaded = ConvAttentionFusion.from_pretrained(path)
    batch = collate([_sample("happy", np.random.default_rng(4)).inputs])
    assert torch.allclose(loaded(batch), trained(batch))
    assert loaded.meta == {"note": "test"}
    ck = torch.load(path, weights_only=True)
    ck["config"]["dims"]["voice"] += 1  # a head built for another feature layout
    torch.save(ck, tmp_path / "other.pt")
    with pytest.raises(ModelUnavailableError, match="retrain"):
        ConvAttentionFusion.from_pretrained(tmp_path / "other.pt")
    ck = torch.load(path, weights_only=True)
    ck["model"]["extra.weight"] = torch.zeros(1)
    torch.save(ck, tmp_path / "extra.pt")
    with pytest.raises(ModelUnavailableError, match="extra.weight"):
        ConvAttentionFusion.from_pretrained(tmp_path / "extra.pt")
    with pytest.raises(ModelUnavailableError, match="--fusion handset"):
        ConvAttentionFusion.from_pretrained(tmp_path / "missing.pt")


def test_the_shipped_head_loads_with_its_numbers():
    head = LearnedFusion.shipped()
    assert head.labels == LABELS
    cv = head.net.meta["cross_validation"]
    assert cv["pairs_and_other_groups"]["n"] >= 50
    assert 0.0 <= cv["pairs_only"]["accuracy"] <= 1.0
    probs, weights = head.predict(_sample("happy", np.random.default_rng(5)).inputs)
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert weights["action_units"] == 0.0 and weights["words"] == 0.0  # absent: no attention
    assert weights["face"] + weights["voice"] == pytest.approx(1.0, abs=1e-5)


def test_labels_the_head_lacks_keep_the_handset_mass():
    learned = {y: 0.0 for y in LABELS} | {"sad": 0.7, "fear": 0.2, "neutral": 0.1}
    handset = {y: 0.0 for y in get_label_set("merr9").labels} | {"worried": 0.3, "doubt": 0.1, "neutral": 0.6}
    merr9 = onto_label_set(learned, handset, get_label_set("merr9"))
    assert merr9["worried"] == pytest.approx(0.3) and merr9["doubt"] == pytest.approx(0.1)
    assert merr9["sad"] == pytest.approx(0.6 * 0.7) and merr9["neutral"] == pytest.approx(0.6 * 0.1)
    assert sum(merr9.values()) == pytest.approx(1.0)
    dfew7 = onto_label_set(learned, {y: 1 / 7 for y in LABELS}, get_label_set("dfew7"))
    assert dfew7 == pytest.approx(learned)
    # mer6 has no fear: the head's fear reaches worried through the cross-set table, on top of the
    # hand-set worried (both fusions agree there), and nothing is lost.
    mer6 = onto_label_set({y: 0.0 for y in LABELS} | {"fear": 0.88, "happy": 0.12},
                          {y: 0.0 for y in get_label_set("mer6").labels} | {"worried": 0.5, "happy": 0.5},
                          get_label_set("mer6"))
    assert mer6["worried"] == pytest.approx(0.5 * 0.88 + 0.5) and mer6["happy"] == pytest.approx(0.5 * 0.12)
    assert sum(mer6.values()) == pytest.approx(1.0)


def test_the_command_line_starts_without_torch():
    """Every command (and --help, and a one-line error) starts without loading torch or the models."""
    import subprocess
    import sys

    code = "import sys, emollama.cli; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


def test_explicit_words_move_the_head_and_neutral_words_barely_do():
    from emollama.recognize.conv_attention import with_words

    calm_face = {y: 1e-6 for y in LABELS} | {"neutral": 1.0 - 6e-6}  # the head is sure, and deaf to words
    terrified = {"fear": 0.9, "neutral": 0.03, "sad": 0.02, "angry": 0.02, "happy": 0.01, "disgust": 0.01,
                 "surprise": 0.01}
    moved = with_words(calm_face, terrified, 0.97)
    assert 0.03 < moved["fear"] < 0.5 and max(moved, key=moved.get) == "neutral"  # raised, not overturned
    flat = {"neutral": 0.8, "happy": 0.05, "sad": 0.05, "angry": 0.03, "fear": 0.03, "disgust": 0.02,
            "surprise": 0.02}
    sad_head = {y: 0.02 for y in LABELS} | {"sad": 0.6, "neutral": 0.28}
    after = with_words(sad_head, flat, 0.2 * 0.2)  # ASR words with little emotional content
    assert max(after, key=after.get) == "sad" and after["neutral"] < 0.35
    assert sum(with_words(sad_head, None, 1.0).values()) == pytest.approx(1.0)


def test_unknown_fusion_is_an_input_error():
    from emollama.recognize.clues import CluesRecognizer

    with pytest.raises(InputError, match="handset"):
        CluesRecognizer("average")


def test_restrict_reads_only_the_chosen_modalities():
    rng = np.random.default_rng(6)
    samples = [_sample("angry", rng), _sample("angry", rng, face=False)]
    face_only = restrict(samples, ("face",))
    assert len(face_only) == 1 and face_only[0].inputs.present == {"face": True, "action_units": False,
                                                                   "voice": False, "words": False}


# -- the hand-set fusion: words without emotion are no evidence of calm --------------------------

def test_neutral_words_do_not_outvote_a_sad_face():
    face = ModalityEvidence("face", {"sad": 0.55, "neutral": 0.3, "happy": 0.05, "angry": 0.05, "fear": 0.05}, 0.8,
                            "test")
    text = {"neutral": 0.9, "happy": 0.02, "sad": 0.02, "angry": 0.02, "fear": 0.02, "surprise": 0.01,
            "disgust": 0.01}
    as_evidence = ModalityEvidence("words", text, 1.0, "test")
    as_absence = ModalityEvidence("words", text, 1.0 * emotional_content(text), "test")
    before, _ = fuse([face, as_evidence], "dfew7")
    after, _ = fuse([face, as_absence], "dfew7")
    assert max(before, key=before.get) == "neutral"  # the old rule: flat words say "neutral"
    assert max(after, key=after.get) == "sad"
    angry_text = {"angry": 0.8, "neutral": 0.1, "sad": 0.1}
    assert emotional_content(angry_text) == pytest.approx(0.9)
    assert emotional_content({"neutral": 1.0}) > 0  # words alone still give a (weak) answer


# -- face pooling over frames ------------------------------------------------------------------------

NAMES = ("neutral", "sad", "happy")


def _frames(n: int = 20, expressive: slice = slice(8, 12)) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """A talking face: neutral-ish frames with a brief sad expression (classes: neutral, sad, happy)."""
    probs = np.tile([0.6, 0.25, 0.15], (n, 1))
    probs[expressive] = [0.1, 0.85, 0.05]
    return probs, np.ones(n, bool), np.arange(n) * 0.1, 10


def test_peak_window_and_expressive_pooling_find_a_brief_expression():
    probs, confident, times, peak = _frames()
    mean = pool_expression(probs, confident, times, peak, "mean", NAMES)
    assert mean.argmax() == 0  # diluted by the talking frames
    for method in ("peak_window", "expressive_half"):
        assert pool_expression(probs, confident, times, peak, method, NAMES).argmax() == 1
    for method in POOLING_METHODS:
        assert pool_expression(probs, confident, times, peak, method, NAMES).sum() == pytest.approx(1.0)
    odd = pool_expression(probs[:5], confident[:5], times[:5], None, "expressive_half", NAMES)
    assert odd == pytest.approx(probs[:3].mean(0))  # 5 frames: the 3 least neutral (half, rounded up)


def test_confidence_pooling_weights_the_frames_the_head_is_sure_of():
    probs = np.array([[0.5, 0.25, 0.25]] * 12 + [[0.02, 0.96, 0.02]] * 2)  # unsure frames lean neutral
    ones, times = np.ones(14, bool), np.arange(14) * 0.1
    assert pool_expression(probs, ones, times, None, "mean", NAMES).argmax() == 0
    assert pool_expression(probs, ones, times, None, "confidence", NAMES).argmax() == 1


def test_unconfident_frames_are_left_out_unless_there_is_nothing_else():
    probs, confident, times, _ = _frames()
    confident[:] = False
    confident[9] = True
    assert pool_expression(probs, confident, times, None, "mean", NAMES).argmax() == 1
    confident[:] = False
    assert pool_expression(probs, confident, times, None, "mean", NAMES) == pytest.approx(probs.mean(0))
    with pytest.raises(ValueError, match="pooling"):
        pool_expression(probs, confident, times, None, "median", NAMES)
