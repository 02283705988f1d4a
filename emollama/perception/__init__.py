"""Perception: file → Perception (pipeline.py) — face track, action units, expression, voice, words."""
