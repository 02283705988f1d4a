"""Instruction tuning of Emotion-LLaMA: config dataclasses ↔ packaged YAML recipes, annotation readers,
run folders with atomic checkpoints, and the coarse-to-fine recipe on one Accelerate loop."""
