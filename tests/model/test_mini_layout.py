"""The laptop layout of emotion-llama-mini: absent-modality embeddings, no global encoder, the shipped
heads in the encoder slots — built on tiny random LLMs so nothing large loads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emollama.model.config import ConfigError, EmotionLlamaConfig, load_model_config
from emollama.model.emotion_llama import FEATURE_ORDER, VIDEO_TOKEN_ID, EmotionLlama, MediaFeatures
from emollama.model.encoders import MediaEncoders
from emollama.model.processor import EmotionLlamaProcessor
from emollama.model.tier import EmotionLlamaInputs, encode_media

from .conftest import tiny_config


def mini_tiny_config() -> EmotionLlamaConfig:
    """The tiny random LLM with the mini's slots: shipped face head and Whisper-base, no global tower."""
    mini = load_model_config("emotion-llama-mini")
    data = tiny_config().to_dict()
    data["name"] = "tiny-mini"
    data["projector"] = mini.to_dict()["projector"]
    for slot in ("global_encoder", "local_encoder", "temporal_encoder", "audio_encoder"):
        data[slot] = mini.to_dict()[slot]
    return EmotionLlamaConfig.from_dict(data)


def test_packaged_mini_config_is_valid_and_names_the_packaged_llm() -> None:
    cfg = load_model_config("emotion-llama-mini")
    assert cfg.llm.gguf == "smollm2" and cfg.llm.path is None
    assert cfg.global_encoder is None and cfg.projector.num_video_tokens == 0
    assert cfg.projector.absent_embeddings


def test_config_rejects_contradictions() -> None:
    data = tiny_config().to_dict()
    with pytest.raises(ConfigError, match="global_patches to 0"):
        EmotionLlamaConfig.from_dict({**data, "global_encoder": None})
    with pytest.raises(ConfigError, match="only one"):
        EmotionLlamaConfig.from_dict({**data, "llm": {**data["llm"], "path": "x", "gguf": "smollm2"}})


def test_presence_is_read_off_zero_vectors() -> None:
    cfg = tiny_config()
    feats = MediaFeatures.zeros(cfg.projector, 2)
    feats.audio[0] = 1.0
    feats.local[1, 3] = -0.5
    present = feats.present()
    assert present.shape == (2, len(FEATURE_ORDER))
    assert present[0].tolist() == [False, False, True, False]
    assert present[1].tolist() == [True, False, False, False]


def test_absent_slots_get_the_learned_embedding_and_it_learns() -> None:
    cfg = mini_tiny_config()
    model = EmotionLlama.from_config(cfg)
    proj = model.projector
    assert proj.absent is not None and proj.absent.requires_grad
    with torch.no_grad():
        proj.absent.copy_(torch.arange(proj.absent.numel(), dtype=torch.float32).view_as(proj.absent))
    feats = MediaFeatures.zeros(cfg.projector, 1)
    feats.audio[0] = torch.randn(cfg.projector.audio_dim)
    video, feature = proj(feats)
    assert video.shape[1] == 0
    audio_slot = FEATURE_ORDER.index("audio")
    for i in range(len(FEATURE_ORDER)):
        if i == audio_slot:
            assert torch.allclose(feature[0, i], proj.audio(feats.audio)[0])
        else:
            assert torch.equal(feature[0, i], proj.absent[i])
    feature.sum().backward()
    assert proj.absent.grad is not None and proj.absent.grad.abs().sum() > 0
    assert "projector.absent" in model.trainable_state_dict()


def test_no_global_encoder_means_no_video_tokens_and_a_working_generate(tmp_path) -> None:
    cfg = mini_tiny_config()
    proc = EmotionLlamaProcessor.from_config(cfg)
    enc = proc.encode(proc.user_prompt("emotion", "hello", label_set="dfew7"), "happy")
    assert VIDEO_TOKEN_ID not in enc.input_ids
    model = EmotionLlama.from_config(cfg).eval()
    batch = proc.collate([proc.encode(proc.user_prompt("emotion", None))], padding_side="left")
    out = model.generate(batch["input_ids"], batch["attention_mask"], MediaFeatures.zeros(cfg.projector, 1),
                         stop_ids=proc.stop_ids, max_new_tokens=3)
    assert len(out[0]) <= 3
    folder = model.save_pretrained(tmp_path / "m", processor=proc)
    again = EmotionLlama.from_pretrained(folder)  # strict: projector.absent must round-trip
    assert torch.equal(again.projector.absent, model.projector.absent)


@pytest.fixture(scope="module")
def mini_encoders() -> MediaEncoders:
    return MediaEncoders.from_config(mini_tiny_config()).eval()


def test_shipped_heads_fill_the_slots_each_input_kind(mini_encoders: MediaEncoders) -> None:
    cfg = mini_encoders.cfg
    rng = np.random.default_rng(0)
    face = [rng.integers(0, 255, (112, 112, 3), dtype=np.uint8) for _ in range(4)]
    aus = rng.uniform(0, 5, (4, 17)).astype(np.float32)
    aus[1] = np.nan  # a frame without a confident face
    speech = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    clips = [
        EmotionLlamaInputs(face, [0.0] * 4, face, 0, speech, "hi", face_aus=aus),  # video with speech
        EmotionLlamaInputs(face[:1], [0.0], face[:1], 0, None, None),  # a still image
        EmotionLlamaInputs([], [], [], None, speech, None),  # speech only
        EmotionLlamaInputs([], [], [], None, None, "only words"),  # text only
    ]
    feats = encode_media(cfg, mini_encoders, clips)
    pj = cfg.projector
    assert feats.local.shape == (4, pj.local_dim) and feats.temporal.shape == (4, pj.temporal_dim)
    assert feats.audio.shape == (4, pj.audio_dim)
    assert feats.present().tolist() == [[True, True, True, False], [True, True, False, False],
                                        [False, False, True, False], [False, False, False, False]]
    assert torch.isfinite(feats.temporal).all()
    # The AU part of the face-track vector is the scaled mean/max (NaN frames count as 0).
    n_aus = aus.shape[1]
    au_mean = feats.temporal[0, -2 * n_aus:-n_aus]
    expected = np.nan_to_num(aus, nan=0.0).clip(0, 5).mean(0) / 5
    assert np.allclose(au_mean.numpy(), expected, atol=1e-5)
    # One clip encoded alone gives the same features as inside a batch.
    alone = encode_media(cfg, mini_encoders, clips[:1])
    assert torch.allclose(alone.local[0], feats.local[0]) and torch.allclose(alone.audio[0], feats.audio[0])


@pytest.mark.slow
def test_mini_tier_takes_the_label_from_emotion_and_the_reasoning_from_reason_v2(tmp_path, monkeypatch) -> None:
    from emollama.api import EmotionLlamaAnalyzer
    from emollama.model.tier import EmotionLlamaRecognizer
    from tests.clips import EXAMPLE

    cfg = mini_tiny_config()
    cfg.prompt.label_task, cfg.prompt.reason_task = "emotion", "reason_v2"
    proc = EmotionLlamaProcessor.from_config(cfg)
    folder = EmotionLlama.from_config(cfg).save_pretrained(tmp_path / "m", save_backbones=True, processor=proc)
    answers = {"emotion": ["hap", "py"], "reason_v2": ["The lips pull up; ", "the person feels sad."]}
    asked: list[str] = []

    def fake_stream(self, inputs, label_set, task, **_kw):  # noqa: ANN001, ANN202 (the generation is not under test)
        asked.append(task)
        assert inputs.face_crops and inputs.audio_16k is not None  # the clip's face and voice reach the encoders
        yield from answers[task]

    monkeypatch.setattr(EmotionLlamaRecognizer, "stream", fake_stream)
    shown: list[tuple[str, str]] = []
    analyzer = EmotionLlamaAnalyzer(folder, label_set="dfew7")
    analyzer.recognizer.on_text = lambda task, piece: shown.append((task, piece))
    r = analyzer.analyze(EXAMPLE)
    assert asked == ["emotion", "reason_v2"]
    assert r.label == "happy" and r.scores["happy"] == 1.0
    assert r.reasoning == "The lips pull up; the person feels sad."
    assert any("reasoning names sad" in w for w in r.warnings)  # a disagreement is reported, the label kept
    assert "".join(p for t, p in shown if t == "emotion") == "happy"


def test_a_projector_width_that_does_not_match_the_encoder_is_a_config_error() -> None:
    data = mini_tiny_config().to_dict()
    data["projector"]["audio_dim"] = 1024
    with pytest.raises(ConfigError, match="projector.audio_dim: 2048"):
        MediaEncoders.from_config(EmotionLlamaConfig.from_dict(data))


def test_feature_stores_made_before_the_encoder_kinds_existed_stay_valid() -> None:
    from emollama.features.store import encoder_identity

    ids = encoder_identity(tiny_config())  # ViT-MAE / VideoMAE / HuBERT: the kinds every old store used
    for slot in ("local_encoder", "temporal_encoder", "audio_encoder"):
        assert "kind" not in ids[slot]["settings"] and "whisper_layers" not in ids[slot]["settings"]
    mini = encoder_identity(mini_tiny_config())
    assert mini["audio_encoder"]["settings"]["kind"] == "whisper_base"
    assert mini["audio_encoder"]["settings"]["whisper_layers"] == [2, 3, 4, 5]
