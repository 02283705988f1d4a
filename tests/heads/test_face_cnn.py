"""The shipped face head on real input: the bundled clip's aligned crops (no dataset needed)."""

from __future__ import annotations

import av
import numpy as np
import pytest

from emollama.heads.face import FACE_CNN_WEIGHTS, ExpressionModel, load_expression_model
from emollama.media.decode import Frame
from emollama.perception.face import FaceAnalyzer
from tests.clips import EXAMPLE


@pytest.fixture(scope="module")
def model():
    return load_expression_model()


def test_shipped_cnn_is_loaded_small_and_calibrated(model):
    if not FACE_CNN_WEIGHTS.is_file():
        pytest.skip("face_cnn.pt is not shipped")
    assert isinstance(model, ExpressionModel) and 0.2 < model.temperature < 5
    assert FACE_CNN_WEIGHTS.stat().st_size <= 10 * 1024 * 1024
    probs = model.predict([np.zeros((112, 112, 3), np.uint8), np.full((48, 48), 90, np.uint8)])
    assert probs.shape == (2, len(model.labels)) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert set(model.labels) >= {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}


def test_labels_come_from_the_checkpoint(tmp_path):
    """An eight-output network (the CK+ stage adds contempt) is loaded with its own label order."""
    import torch

    from emollama.heads.face import FaceCNN, load_face_cnn
    from emollama.perception.face_clues import summarize_faces

    labels = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt"]
    net = FaceCNN((4, 4, 4, 8), n_classes=8)
    path = tmp_path / "face.pt"
    torch.save({"model": net.state_dict(), "widths": [4, 4, 4, 8], "labels": labels, "temperature": 1.0}, path)
    loaded, ck = load_face_cnn(path)
    model = ExpressionModel(loaded, 1.0, True, "tiny", tuple(ck["labels"]))
    assert model.labels[-1] == "contempt" and model.predict([np.zeros((48, 48), np.uint8)]).shape == (1, 8)
    with pytest.raises(Exception, match="8 outputs"):
        ExpressionModel(loaded, 1.0, True, "tiny")  # default seven labels do not fit eight outputs
    with av.open(str(EXAMPLE)) as c:
        frames = [Frame(i, float(f.time), f.to_ndarray(format="rgb24"))
                  for i, f in enumerate(c.decode(c.streams.video[0])) if i % 10 == 0][:4]
    scan = FaceAnalyzer(expression=model, max_faces=1).scan(frames, static=True)
    assert scan.expression_labels == tuple(labels)
    summary = summarize_faces(scan, has_video=True)
    assert set(summary.expression_probs) == set(labels)  # canonical words: contempt reaches fusion
    assert list(summary.clues.expression_mean) == labels


def test_smile_in_the_example_clip_reads_happy(model):
    """The clip's smile peaks around 3.2 s: the aligned crops of the main face there must read happy."""
    with av.open(str(EXAMPLE)) as c:
        stream = c.streams.video[0]
        frames = [Frame(i, float(f.time), f.to_ndarray(format="rgb24"))
                  for i, f in enumerate(c.decode(stream)) if 2.8 <= float(f.time) <= 3.6][::3]
    assert frames
    scan = FaceAnalyzer(expression=model, max_faces=1).scan(frames, static=True)
    assert scan.main is not None and len(scan.main.observations) >= len(frames) // 2
    mean = np.mean([o.expression for o in scan.main.observations], axis=0)
    assert model.labels[int(mean.argmax())] == "happy", dict(zip(model.labels, mean.round(3), strict=True))


def test_channels_last_network_gives_the_same_answers_from_a_plain_checkpoint(tmp_path):
    """FaceCNN runs channels-last for speed; a checkpoint saved in the default layout (as every
    shipped file is) must load into it and give the same logits as the plain NCHW computation."""
    import torch

    from emollama.heads.face import FaceCNN, load_face_cnn

    torch.manual_seed(0)
    net = FaceCNN((4, 8, 8, 16), n_classes=8).eval()
    for m in net.modules():  # non-trivial batch-norm statistics so the check covers them
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    plain = {k: v.contiguous() for k, v in net.state_dict().items()}
    assert all(v.is_contiguous() for v in plain.values())
    path = tmp_path / "face.pt"
    torch.save({"model": plain, "widths": [4, 8, 8, 16], "labels": list("abcdefgh")}, path)
    loaded, _ = load_face_cnn(path)
    conv = loaded.features[2][0].weight  # 4 -> 8 channels: the layouts differ (unlike a 1-channel input)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()

    x = torch.rand(3, 1, 48, 48) * 2 - 1
    reference = FaceCNN((4, 8, 8, 16), n_classes=8).eval().to(memory_format=torch.contiguous_format)
    reference.load_state_dict(plain)
    with torch.inference_mode():
        expected = reference.head(reference.features(x.contiguous()).mean(dim=(2, 3)))
        assert torch.allclose(loaded(x), expected, atol=1e-5)
