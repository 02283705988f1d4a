"""Perception: face track, action units, expression, voice, speech-to-text, text emotion."""
