"""The fusion-head recipe: ``python -m emollama.train.fusion`` (dev clips + cross-corpus pairs)."""
