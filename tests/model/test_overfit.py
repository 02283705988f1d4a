"""A short overfit: the loss must fall to near zero and generation must then say the label.

The three samples share the same text and differ only in their media features, so the model can
only get them right by reading the spliced tokens: this checks the whole path (projector, splice,
LoRA, loss masking, the shared prompt layout, generation) learns, not just that it runs.
"""

from __future__ import annotations

import time

import torch

from emollama.label_parsing import parse_label
from emollama.model.emotion_llama import EmotionLlama, MediaFeatures
from emollama.model.processor import EmotionLlamaProcessor

from .conftest import random_features, tiny_config

TARGETS = ["happy", "sad", "angry"]


def test_overfit_three_clips_then_generate_the_label() -> None:
    start = time.perf_counter()
    torch.manual_seed(0)
    cfg = tiny_config()
    cfg.lora.r, cfg.lora.target_modules = 16, ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"]
    # A random head at the usual 0.02 init cannot give confident logits (|logit| < ~1.3 after the
    # frozen RMSNorm); a wider init stands in for the sharp output layer of a trained LM.
    assert cfg.llm.random_init is not None
    cfg.llm.random_init["initializer_range"] = 0.3
    model = EmotionLlama.from_config(cfg)
    proc = EmotionLlamaProcessor.from_config(cfg)
    user = proc.user_prompt("emotion", "well, here we are")
    batch = proc.collate([proc.encode(user, t) for t in TARGETS])
    feats = random_features(cfg, len(TARGETS), seed=21)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=3e-3, weight_decay=0.0)
    first = last = None
    model.train()
    steps = 0
    while steps < 300:
        steps += 1
        _, loss = model(batch["input_ids"], batch["attention_mask"], feats, batch["labels"])
        assert loss is not None
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
        last = loss.item()
        if last < 0.01:
            break
    assert first is not None and first > 3.0  # started near chance (ln 1024 ≈ 6.9)
    assert last is not None and last < 0.05, f"loss only fell to {last} after {steps} steps"
    model.eval()
    gen = proc.collate([proc.encode(user)] * len(TARGETS), padding_side="left")
    outputs = model.generate(
        gen["input_ids"], gen["attention_mask"], feats, stop_ids=proc.stop_ids, max_new_tokens=8
    )
    texts = [proc.decode(o) for o in outputs]
    assert texts == TARGETS
    assert [parse_label(t, "merr9").label for t in texts] == TARGETS
    # Each answer is driven by its own media: swapping the features swaps the answers.
    swapped = MediaFeatures.cat([_row(feats, 1), _row(feats, 0), _row(feats, 2)])
    outputs = model.generate(
        gen["input_ids"], gen["attention_mask"], swapped, stop_ids=proc.stop_ids, max_new_tokens=8
    )
    assert [proc.decode(o) for o in outputs] == ["sad", "happy", "angry"]
    assert time.perf_counter() - start < 60


def _row(feats: MediaFeatures, i: int) -> MediaFeatures:
    return MediaFeatures(
        feats.global_patches[i : i + 1],
        feats.global_cls[i : i + 1],
        feats.local[i : i + 1],
        feats.temporal[i : i + 1],
        feats.audio[i : i + 1],
    )
