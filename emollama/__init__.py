"""emollama: Emotion-LLaMA and MERR, end to end - multimodal emotion recognition with reasons.

    >>> from emollama import analyze
    >>> result = analyze("clip.mp4")          # doctest: +SKIP
    >>> result.label, result.reasoning        # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from emollama.api import Analyzer, analyze
    from emollama.schema import AnalysisResult
    from emollama.settings import AnalysisSettings

__all__ = ["Analyzer", "AnalysisResult", "AnalysisSettings", "analyze", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy: `import emollama` stays fast (no torch/mediapipe) until the API is actually used.
    if name in ("analyze", "Analyzer"):
        from emollama import api

        return getattr(api, name)
    if name == "AnalysisResult":
        from emollama.schema import AnalysisResult

        return AnalysisResult
    if name == "AnalysisSettings":
        from emollama.settings import AnalysisSettings

        return AnalysisSettings
    raise AttributeError(f"module 'emollama' has no attribute {name!r}")
