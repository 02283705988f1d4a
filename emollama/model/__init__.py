"""The Emotion-LLaMA model: encoders → per-modality projections → causal LM (+ LoRA).

``config`` (dataclasses ↔ YAML), ``encoders`` (EVA/CLIP, ViT-MAE, VideoMAE, HuBERT wrappers),
``emotion_llama`` (projector + LM, training loss, generation), ``processor`` (media/text →
tensors, the one prompt layout), ``prompts`` (task tags and instruction pools), ``weights``
(the strict safetensors folder format), ``checkpoint`` (``load_pretrained``, official-weights
import), ``tier`` (the analyze tier).
Heavy modules are imported on use, so ``import emollama.model`` stays cheap.
"""

from emollama.model.config import EmotionLlamaConfig

__all__ = ["EmotionLlamaConfig"]
