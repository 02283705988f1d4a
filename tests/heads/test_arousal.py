"""Voice arousal calibrated on labelled speech: calm prosody is not called agitated, agitated is."""

from __future__ import annotations

import json

import pytest

from emollama.describe import arousal_word
from emollama.errors import ModelUnavailableError
from emollama.heads.arousal import ArousalModel, shipped_arousal_model

CALM = {"relative": {"pitch_level_vs_norm_st": -1.0, "pitch_range_st": 3.0, "pitch_peak_vs_baseline_st": 2.0,
                     "loudness_peak_vs_baseline_db": 6.0, "rate_vs_typical": 0.8},
        "prosody": {"f0_sd_st": 1.0, "voiced_fraction": 0.5, "jitter_local": 0.02, "shimmer_local": 0.1,
                    "hnr_db": 12.0}}
AGITATED = {"relative": {"pitch_level_vs_norm_st": 6.0, "pitch_range_st": 14.0, "pitch_peak_vs_baseline_st": 10.0,
                         "loudness_peak_vs_baseline_db": 20.0, "rate_vs_typical": 1.3},
            "prosody": {"f0_sd_st": 4.0, "voiced_fraction": 0.7, "jitter_local": 0.015, "shimmer_local": 0.08,
                        "hnr_db": 15.0}}


def test_calm_and_agitated_prosody_are_told_apart():
    model = shipped_arousal_model()
    calm, agitated = model.arousal(CALM), model.arousal(AGITATED)
    assert arousal_word(calm) in ("calm", "subdued, low-energy")
    assert arousal_word(agitated) == "highly aroused, agitated"
    louder = json.loads(json.dumps(CALM))
    louder["relative"]["loudness_peak_vs_baseline_db"] = 20.0
    louder["relative"]["pitch_level_vs_norm_st"] = 5.0
    assert calm < model.arousal(louder) < agitated  # monotone in the measures that mean arousal


def test_missing_measures_count_as_typical_and_too_few_give_none():
    model = shipped_arousal_model()
    no_pitch = {"relative": {"loudness_peak_vs_baseline_db": 20.0, "rate_vs_typical": 1.3},
                "prosody": {"voiced_fraction": 0.7, "hnr_db": 15.0}}
    assert model.arousal(no_pitch) is not None
    assert model.arousal({"relative": {"rate_vs_typical": 1.0}, "prosody": {}}) is None
    nan = {"relative": dict(CALM["relative"], pitch_range_st=float("nan")), "prosody": CALM["prosody"]}
    assert model.arousal(nan) is not None


def test_the_card_numbers_travel_with_the_model():
    meta = shipped_arousal_model().meta
    assert meta["loso"]["balanced_accuracy"] > 0.75
    assert "check_clips" in meta and meta["check_clips"]["n"] > 0


def test_a_calibration_for_other_measures_is_refused(tmp_path):
    model = shipped_arousal_model()
    path = tmp_path / "arousal.json"
    ArousalModel(model.mean[:-1], model.std[:-1], model.coef[:-1], model.intercept, model.features[:-1]).save(path)
    with pytest.raises(ModelUnavailableError, match="rebuild"):
        ArousalModel.load(path)
    path.write_text("{not json")
    with pytest.raises(ModelUnavailableError, match="unreadable"):
        ArousalModel.load(path)
