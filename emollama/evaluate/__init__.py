"""The paper's benchmarks, computed reproducibly: closed-set classification, EMER reasoning, MER-OV.

Layers: :mod:`readers` (files → records), :mod:`metrics` (pure numbers), :mod:`classification`,
:mod:`emer` and :mod:`ov` (task logic), :mod:`judge` (LLM-judged scores over :mod:`emollama.llm`),
:mod:`report` and :mod:`plots` (artefacts). Nothing here prints; the CLI renders.
"""

from __future__ import annotations

from emollama.evaluate.classification import ClassificationResult, evaluate_classification
from emollama.evaluate.errors import EvaluationInputError, LabelMismatchError
from emollama.evaluate.readers import Table, read_table

__all__ = [
    "ClassificationResult",
    "EvaluationInputError",
    "LabelMismatchError",
    "Table",
    "evaluate_classification",
    "read_table",
]
