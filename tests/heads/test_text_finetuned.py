"""The partly fine-tuned MiniLM: the frozen/trainable split computes exactly the full encoder."""

from __future__ import annotations

from pathlib import Path

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


@pytest.fixture(scope="module")
def shipped_members(tmp_path_factory) -> Path:
    """A copy of the shipped ensemble's member files, to build variants of the ensemble file around."""
    import shutil

    from emollama.heads.text import ENSEMBLE_PATH

    if not ENSEMBLE_PATH.is_file():
        pytest.skip("no text ensemble shipped")
    folder = tmp_path_factory.mktemp("members")
    for f in ENSEMBLE_PATH.parent.glob("minilm_member*"):
        shutil.copy(f, folder / f.name)
    shutil.copy(ENSEMBLE_PATH, folder / "ens.json")
    return folder


def test_ensemble_is_the_mean_of_independent_members(shipped_members: Path):
    """Members loaded together behave exactly as each loaded alone, and are averaged as documented."""
    import json

    import numpy as np

    from emollama.heads.calibration import log_softmax, softmax
    from emollama.heads.text_finetuned import EnsembleTextHead, FineTunedTextHead

    meta = json.loads((shipped_members / "ens.json").read_text())
    meta["logit_bias"] = [0.3 * k - 0.5 for k in range(len(meta["labels"]))]  # a non-zero prior correction
    meta["temperature"] = 1.7
    (shipped_members / "biased.json").write_text(json.dumps(meta))
    ensemble = EnsembleTextHead(shipped_members / "biased.json")
    # No two members share a tuned layer (a shared one would be overwritten by the last member loaded).
    tuned = [{p.data_ptr() for p in m.model.top.parameters()} for m in ensemble.members]
    assert all(not (a & b) for i, a in enumerate(tuned) for b in tuned[i + 1:])
    texts = ["He’s lost it — he’s totally lost it…", "Oh, that's wonderful news!", "Get out of my room now!"]
    alone = [FineTunedTextHead(shipped_members / stem).logits(texts, with_bias=False) for stem in meta["members"]]
    for member, ref in zip(ensemble.members, alone, strict=True):
        np.testing.assert_allclose(member.logits(texts, with_bias=False), ref, atol=1e-5)
    by_hand = softmax((np.mean([log_softmax(z) for z in alone], axis=0) + np.array(meta["logit_bias"])) / 1.7)
    np.testing.assert_allclose(ensemble.predict_proba(texts), by_hand, atol=1e-5)


@pytest.mark.parametrize("damage", ["truncated weights", "bad json", "no members", "short bias", "other base"])
def test_damaged_ensemble_files_give_a_clear_error(shipped_members: Path, tmp_path: Path, damage: str):
    import json
    import shutil

    from emollama.errors import ModelUnavailableError
    from emollama.heads.text_finetuned import EnsembleTextHead

    for f in shipped_members.iterdir():
        shutil.copy(f, tmp_path / f.name)
    meta = json.loads((tmp_path / "ens.json").read_text())
    if damage == "truncated weights":
        first = tmp_path / f"{meta['members'][0]}.safetensors"
        first.write_bytes(first.read_bytes()[:5000])
    elif damage == "bad json":
        (tmp_path / "ens.json").write_text('{"labels": ["angry",')
    else:
        meta.update({"no members": {"members": []}, "short bias": {"logit_bias": [0.0, 0.0]},
                     "other base": {"base_sha256": "0" * 64}}[damage])
        (tmp_path / "ens.json").write_text(json.dumps(meta))
    with pytest.raises(ModelUnavailableError, match="rebuild|reinstall"):
        EnsembleTextHead(tmp_path / "ens.json")
