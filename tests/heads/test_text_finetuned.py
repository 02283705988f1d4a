"""The partly fine-tuned MiniLM: the frozen/trainable split computes exactly the full encoder."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertModel

from emollama.heads.text_finetuned import MiniLMEmotionModel


@pytest.fixture()
def base() -> BertModel:
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=40)
    return BertModel(cfg).eval()


def test_bottom_then_head_equals_the_whole_encoder(base: BertModel):
    ids = torch.tensor([[2, 7, 9, 11, 3], [2, 5, 3, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    types = torch.zeros_like(ids)
    with torch.no_grad():
        full = base(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        model = MiniLMEmotionModel(base, n_top=2, n_classes=3).eval()
        hidden = model.bottom(ids, types, mask)
        # Replace the classifier by the identity-on-pooled trick: compare pooled features.
        pooled_ref = (full * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        model.classifier = torch.nn.Identity()
        pooled = model.head(hidden, mask)
    torch.testing.assert_close(pooled, pooled_ref, atol=1e-5, rtol=1e-5)
    # Padding does not leak: the short row alone gives the same pooled vector.
    with torch.no_grad():
        alone = model.head(model.bottom(ids[1:, :3], types[1:, :3], mask[1:, :3]), mask[1:, :3])
    torch.testing.assert_close(alone, pooled[1:], atol=1e-5, rtol=1e-5)


def test_only_top_layers_and_classifier_train(base: BertModel):
    model = MiniLMEmotionModel(base, n_top=1, n_classes=3)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("top.", "classifier.")) for n in trainable)
    assert set(model.trainable_state()) == {k for k in model.state_dict() if k.startswith(("top.", "classifier."))}
    with pytest.raises(ValueError, match="n_top"):
        MiniLMEmotionModel(base, n_top=4, n_classes=3)
