"""Recognisers: turn clues into a label, scores and an explanation."""
