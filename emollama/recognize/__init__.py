"""Recognisers: Perception → AnalysisResult, one module per tier (clues fusion, emotion-llama)."""
