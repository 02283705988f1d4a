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


def test_typographic_punctuation_is_spelt_as_whisper_writes_it():
    from emollama.heads.text_finetuned import normalize_punctuation

    assert normalize_punctuation("He’s ‘fine’… “really”—no") == "He's 'fine'... \"really\" - no"
    assert normalize_punctuation("plain ASCII, it's") == "plain ASCII, it's"


def test_low_rank_delta_rebuilds_the_fine_tuned_matrix():
    from emollama.errors import ModelUnavailableError
    from emollama.heads.text_finetuned import pack_low_rank, unpack_low_rank

    torch.manual_seed(0)
    base = {"top.0.w": torch.randn(40, 30), "top.0.b": torch.randn(40), "classifier.weight": torch.randn(3, 40)}
    delta = torch.randn(40, 3) @ torch.randn(3, 30) * 0.05  # a rank-3 change, as fine-tuning makes
    trained = {"top.0.w": base["top.0.w"] + delta, "top.0.b": base["top.0.b"] + 0.1,
               "classifier.weight": torch.randn(3, 40)}
    packed = pack_low_rank(trained, base, rank=3)
    # The big matrix travels as two thin factors; the vector and the small matrix travel whole.
    assert set(packed) == {"top.0.w.delta_u", "top.0.w.delta_v", "top.0.b", "classifier.weight"}
    assert sum(v.numel() for v in packed.values()) < sum(v.numel() for v in trained.values())
    rebuilt = unpack_low_rank(packed, base)
    for key, value in trained.items():
        torch.testing.assert_close(rebuilt[key], value, atol=2e-3, rtol=2e-3)  # fp16 storage
    # A too-low rank loses part of the delta: the packing is lossy and the build script measures it.
    lossy = unpack_low_rank(pack_low_rank(trained, base, rank=1), base)
    assert (lossy["top.0.w"] - trained["top.0.w"]).abs().max() > 1e-2
    with pytest.raises(ModelUnavailableError, match="no packaged matrix"):
        unpack_low_rank(packed, {})


def test_ensemble_of_one_member_twice_is_that_member(tmp_path):
    """Averaging log-probabilities must not distort a member: [m, m] with m's bias and T gives m."""
    import json
    import shutil

    import numpy as np

    from emollama.errors import ModelUnavailableError
    from emollama.heads.text import ENSEMBLE_PATH
    from emollama.heads.text_finetuned import EnsembleTextHead, FineTunedTextHead

    if not ENSEMBLE_PATH.is_file():
        pytest.skip("no text ensemble shipped")
    stem = json.loads(ENSEMBLE_PATH.read_text())["members"][0]
    for suffix in (".safetensors", ".json"):
        shutil.copy(ENSEMBLE_PATH.parent / f"{stem}{suffix}", tmp_path / f"{stem}{suffix}")
    member = FineTunedTextHead(tmp_path / stem)
    meta = {"labels": list(member.labels), "members": [stem, stem], "logit_bias": member.bias.tolist(),
            "temperature": member.temperature}
    (tmp_path / "ens.json").write_text(json.dumps(meta))
    texts = ["I can't believe you did that, get out!", "Oh, that's wonderful news."]
    np.testing.assert_allclose(EnsembleTextHead(tmp_path / "ens.json").predict_proba(texts),
                               member.predict_proba(texts), atol=1e-5)
    (tmp_path / "bad.json").write_text(json.dumps({**meta, "labels": list(reversed(member.labels))}))
    with pytest.raises(ModelUnavailableError, match="disagree"):
        EnsembleTextHead(tmp_path / "bad.json")
