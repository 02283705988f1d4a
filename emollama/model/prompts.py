"""Task tags, instruction pools and the user-turn text, shared by training and inference.

There is exactly one function that writes the user turn (:func:`render_user_prompt`); training
samples and generation requests both go through it, so the two can never drift apart (the
original code builds them differently). Pools live in YAML so users can swap in other wording.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import yaml

from emollama.labels import get_label_set
from emollama.model.config import ConfigError

TASKS: tuple[str, ...] = ("emotion", "reason", "reason_v2", "visual", "audio")
VIDEO_PLACEHOLDER = "<VideoHere>"
FEATURE_PLACEHOLDER = "<FeatureHere>"
DEFAULT_INSTRUCTIONS = Path(__file__).with_name("instructions.yaml")


@dataclass(frozen=True)
class InstructionPools:
    """The scaffold (with both placeholders), the subtitle sentence and one pool per task tag."""

    scaffold: str
    subtitle: str
    pools: dict[str, tuple[str, ...]]

    @classmethod
    def load(cls, path: str | Path | None = None) -> InstructionPools:
        path = Path(path) if path is not None else DEFAULT_INSTRUCTIONS
        if not path.is_file():
            raise ConfigError(f"Instruction pool file not found: {path}.")
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        try:
            scaffold, subtitle, raw = data["scaffold"], data["subtitle"], data["pools"]
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"{path}: needs `scaffold`, `subtitle` and `pools` keys.") from exc
        for ph in (VIDEO_PLACEHOLDER, FEATURE_PLACEHOLDER, "{instruction}"):
            if scaffold.count(ph) != 1:
                raise ConfigError(f"{path}: the scaffold must contain {ph} exactly once.")
        pools = {str(task): tuple(str(x) for x in items) for task, items in raw.items()}
        empty = [t for t, items in pools.items() if not items]
        if empty:
            raise ConfigError(f"{path}: empty instruction pool(s): {', '.join(empty)}.")
        return cls(scaffold=scaffold, subtitle=subtitle, pools=pools)

    def instruction(
        self, task: str, rng: random.Random | None = None, index: int | None = None, label_set: str = "merr9"
    ) -> str:
        """One instruction of ``task``: the ``index``-th, a random one (training), or the first."""
        if task not in self.pools:
            raise ConfigError(f"No instruction pool for task {task!r} (have: {', '.join(self.pools)}).")
        pool = self.pools[task]
        if index is not None:
            text = pool[index % len(pool)]
        elif rng is not None:
            text = rng.choice(pool)
        else:
            text = pool[0]
        return text.replace("{labels}", ", ".join(get_label_set(label_set).labels))


def render_user_prompt(pools: InstructionPools, task: str, instruction: str, subtitle: str | None) -> str:
    """The user turn with both placeholders, before any chat template is applied."""
    sub = (
        pools.subtitle.format(subtitle=subtitle.strip().rstrip(".")) if subtitle and subtitle.strip() else ""
    )
    return pools.scaffold.format(subtitle=sub, task=task, instruction=instruction.strip())
