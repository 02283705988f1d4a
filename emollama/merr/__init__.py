"""MERR dataset construction: coarse and fine annotations from raw clips, the AU/label filter, exports.

The pipeline mirrors the method of the Emotion-LLaMA paper (peak frame from AU intensities, AU
phrases, audio tone, subtitle, label, a coarse caption, then an LLM reasoning paragraph) but on
this project's offline perception stack, and fixes what MER-Factory gets wrong: ground-truth
labels survive every export, errors are never stored as annotations, and every clip's result is
written atomically so a run can be resumed.
"""

from __future__ import annotations

from emollama.merr.consistency import FilterDecision, check_consistency
from emollama.merr.record import MERR_FORMAT

__all__ = ["MERR_FORMAT", "FilterDecision", "check_consistency"]
