"""Prompt layout, splicing, BOS, loss masking, and train/generate equivalence."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from emollama.model.emotion_llama import FEATURE_TOKEN_ID, IGNORE_INDEX, VIDEO_TOKEN_ID, EmotionLlama
from emollama.model.processor import EmotionLlamaProcessor

from .conftest import random_features, tiny_config


def _user(proc: EmotionLlamaProcessor, subtitle: str = "I did not expect that at all") -> str:
    return proc.user_prompt("emotion", subtitle)


def test_layout_has_one_bos_and_contiguous_media_slots(tiny_processor: EmotionLlamaProcessor) -> None:
    enc = tiny_processor.encode(_user(tiny_processor), "surprise")
    ids = enc.input_ids
    bos = tiny_processor.tokenizer.bos_token_id
    assert ids[0] == bos and ids.count(bos) == 1
    video = [i for i, t in enumerate(ids) if t == VIDEO_TOKEN_ID]
    feature = [i for i, t in enumerate(ids) if t == FEATURE_TOKEN_ID]
    assert len(video) == tiny_config().projector.num_video_tokens == 4
    assert len(feature) == 4
    assert video == list(range(video[0], video[0] + 4)) and feature == list(range(feature[0], feature[0] + 4))
    assert video[-1] < feature[0] < enc.prompt_length
    text = tiny_processor.tokenizer.decode([t for t in ids if t >= 0])
    assert text.startswith("<s>[INST] <video></video> <feature></feature> The person in video says:")
    assert "[emotion]" in text and text.endswith("[/INST]surprise</s>")


def test_hf_chat_template_bos_written_as_text_is_not_doubled(tiny_processor: EmotionLlamaProcessor) -> None:
    cfg = tiny_config()
    cfg.llm.chat_template = "hf"
    tok = tiny_processor.tokenizer
    tok.chat_template = (
        "{{ bos_token }}{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}<|assistant|>"
    )
    try:
        proc = EmotionLlamaProcessor(cfg, tok)
        ids = proc.encode(proc.user_prompt("reason", None), "they look happy").input_ids
    finally:
        tok.chat_template = None
    assert ids.count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id
    assert ids.count(VIDEO_TOKEN_ID) == 4


def test_training_and_generation_share_the_prompt(tiny_processor: EmotionLlamaProcessor) -> None:
    user = _user(tiny_processor)
    train = tiny_processor.encode(user, "happy")
    infer = tiny_processor.encode(user)
    assert train.input_ids[: train.prompt_length] == infer.input_ids
    assert infer.prompt_length == len(infer.input_ids)


def test_labels_cover_exactly_the_answer(tiny_processor: EmotionLlamaProcessor) -> None:
    enc = tiny_processor.encode(_user(tiny_processor), "worried")
    answer = tiny_processor.tokenizer("worried", add_special_tokens=False)["input_ids"]
    assert enc.labels[: enc.prompt_length] == [IGNORE_INDEX] * enc.prompt_length
    assert enc.labels[enc.prompt_length :] == answer + [tiny_processor.tokenizer.eos_token_id]


def test_splicing_puts_projected_tokens_at_the_sentinels(
    tiny_model: EmotionLlama, tiny_processor: EmotionLlamaProcessor
) -> None:
    batch = tiny_processor.collate([tiny_processor.encode(_user(tiny_processor), "sad")] * 2)
    feats = random_features(tiny_model.cfg, 2, seed=3)
    embeds = tiny_model.embed(batch["input_ids"], feats)
    assert embeds.shape == (*batch["input_ids"].shape, 64)
    video, feature = tiny_model.projector(feats)
    ids = batch["input_ids"]
    for row in range(2):
        torch.testing.assert_close(embeds[row][ids[row] == VIDEO_TOKEN_ID], video[row])
        torch.testing.assert_close(embeds[row][ids[row] == FEATURE_TOKEN_ID], feature[row])
        text = ids[row] >= 0
        torch.testing.assert_close(embeds[row][text], tiny_model.llm.get_input_embeddings()(ids[row][text]))
    # The 4-by-4 merge concatenates consecutive patches: token 0 sees patches 0..3 only.
    pj = tiny_model.projector.global_patches
    manual = pj(feats.global_patches[0, :4].reshape(-1))
    torch.testing.assert_close(video[0, 0], manual)
    # Feature order: local, temporal, audio, global CLS.
    torch.testing.assert_close(feature[0, 2], tiny_model.projector.audio(feats.audio[0]))
    torch.testing.assert_close(feature[0, 3], tiny_model.projector.global_cls(feats.global_cls[0]))


def test_wrong_number_of_slots_is_rejected(
    tiny_model: EmotionLlama, tiny_processor: EmotionLlamaProcessor
) -> None:
    batch = tiny_processor.collate([tiny_processor.encode(_user(tiny_processor))])
    ids = batch["input_ids"].clone()
    ids[ids == VIDEO_TOKEN_ID] = 5
    with pytest.raises(ValueError, match="video"):
        tiny_model.embed(ids, random_features(tiny_model.cfg, 1))


def test_loss_is_cross_entropy_on_answer_tokens_only(
    tiny_model: EmotionLlama, tiny_processor: EmotionLlamaProcessor
) -> None:
    items = [
        tiny_processor.encode(_user(tiny_processor), "angry"),
        tiny_processor.encode(_user(tiny_processor, "fine"), "a calm and neutral face"),
    ]
    batch = tiny_processor.collate(items)
    feats = random_features(tiny_model.cfg, 2)
    logits, loss = tiny_model(batch["input_ids"], batch["attention_mask"], feats, batch["labels"])
    terms = []
    for row, item in enumerate(items):
        for pos in range(item.prompt_length, len(item.input_ids)):
            terms.append(F.cross_entropy(logits[row, pos - 1], torch.tensor(item.input_ids[pos])))
    assert loss is not None
    torch.testing.assert_close(loss, torch.stack(terms).mean())
    # Changing an answer token changes the loss; the prompt-position logits do not depend on it.
    other = tiny_processor.collate([tiny_processor.encode(_user(tiny_processor), "happy"), items[1]])
    logits2, loss2 = tiny_model(other["input_ids"], other["attention_mask"], feats, other["labels"])
    p = items[0].prompt_length
    torch.testing.assert_close(logits2[0, :p], logits[0, :p])
    assert not torch.isclose(loss2, loss)


def test_generation_continues_exactly_the_training_layout(
    tiny_model: EmotionLlama, tiny_processor: EmotionLlamaProcessor
) -> None:
    user = _user(tiny_processor)
    feats = random_features(tiny_model.cfg, 1, seed=5)
    gen_batch = tiny_processor.collate([tiny_processor.encode(user)], padding_side="left")
    out = tiny_model.generate(
        gen_batch["input_ids"], gen_batch["attention_mask"], feats, stop_ids=[-1], max_new_tokens=6
    )[0]
    # Teacher-force the generated tokens through the training path: greedy choices must agree.
    train = tiny_processor.encode(user)
    ids = torch.tensor([train.input_ids + out])
    logits, _ = tiny_model(ids, torch.ones_like(ids), feats)
    p = train.prompt_length
    assert logits[0, p - 1 : p - 1 + len(out)].argmax(-1).tolist() == out


def test_batched_left_padding_matches_one_by_one(
    tiny_model: EmotionLlama, tiny_processor: EmotionLlamaProcessor
) -> None:
    users = [
        _user(tiny_processor, "no"),
        _user(tiny_processor, "I really cannot believe you would say that to me"),
    ]
    feats = random_features(tiny_model.cfg, 2, seed=9)
    batch = tiny_processor.collate([tiny_processor.encode(u) for u in users], padding_side="left")
    assert batch["attention_mask"][0, 0] == 0  # the short row is padded on the left
    together = tiny_model.generate(
        batch["input_ids"], batch["attention_mask"], feats, stop_ids=[-1], max_new_tokens=8
    )
    for i, u in enumerate(users):
        single = tiny_processor.collate([tiny_processor.encode(u)], padding_side="left")
        one = tiny_model.generate(
            single["input_ids"],
            single["attention_mask"],
            random_features(tiny_model.cfg, 2, seed=9).__class__.cat([_row(feats, i)]),
            stop_ids=[-1],
            max_new_tokens=8,
        )
        assert together[i] == one[0]


def test_sampling_is_seeded_and_stops(
    tiny_model: EmotionLlama, tiny_processor: EmotionLlamaProcessor
) -> None:
    batch = tiny_processor.collate([tiny_processor.encode(_user(tiny_processor))], padding_side="left")
    feats = random_features(tiny_model.cfg, 1)
    kw = dict(stop_ids=[-1], max_new_tokens=10, do_sample=True, temperature=1.5, top_p=0.9, top_k=50)
    a = tiny_model.generate(
        batch["input_ids"], batch["attention_mask"], feats, generator=torch.Generator().manual_seed(1), **kw
    )
    b = tiny_model.generate(
        batch["input_ids"], batch["attention_mask"], feats, generator=torch.Generator().manual_seed(1), **kw
    )
    assert a == b and len(a[0]) == 10
    greedy = tiny_model.generate(
        batch["input_ids"], batch["attention_mask"], feats, stop_ids=[-1], max_new_tokens=3
    )
    stop = greedy[0][1]
    stopped = tiny_model.generate(
        batch["input_ids"], batch["attention_mask"], feats, stop_ids=[stop], max_new_tokens=10
    )
    assert stopped[0] == greedy[0][:1]


def _row(feats, i: int):
    from emollama.model.emotion_llama import MediaFeatures

    return MediaFeatures(
        *(
            getattr(feats, n)[i : i + 1]
            for n in ("global_patches", "global_cls", "local", "temporal", "audio")
        )
    )
