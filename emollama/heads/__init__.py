"""Small networks this project trains and ships (face, voice, text), with their loading; no training code."""

from pathlib import Path

#: Where the shipped weights and their model cards live (package data).
HEADS_DIR = Path(__file__).resolve().parent.parent / "assets" / "heads"
