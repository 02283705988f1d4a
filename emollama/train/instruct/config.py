"""The instruction-tuning recipe's configuration: dataclasses that map 1:1 onto YAML.

Why one file of dataclasses: every setting of a run is visible here with its default and a line
saying what it does; a YAML file is ``to_dict()`` of these objects, unknown keys are errors (a
typo must never fall back to a default silently), and ``--set a.b=value`` edits the same tree
before it is checked. Recipes ship as package data (``configs/*.yaml`` next to this file) so a
pip-installed user names them (``--config coarse-to-fine``) instead of copying files around.

Relative paths (model config, annotation files, feature folders) resolve against the YAML's
folder, or the working directory for packaged recipes, so a run folder can be moved.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from emollama.model.config import ConfigError, EmotionLlamaConfig, build_dataclass, load_model_config, resolve_path

PACKAGED = Path(__file__).with_name("configs")


@dataclass
class OptimConfig:
    """AdamW with linear warm-up then cosine decay, as the paper trains (all settable)."""

    #: Peak learning rate reached after warm-up.
    lr: float = 1e-5
    #: Learning rate at the end of the cosine decay.
    min_lr: float = 1e-6
    #: Learning rate at step 0 of the warm-up (the paper warms up from 1e-6).
    warmup_lr: float = 1e-6
    #: Optimizer steps of linear warm-up (the paper: 1000), counted from the start of each stage.
    warmup_steps: int = 1000
    #: Decay on ≥2-D weights that are not norms or biases; 0 on the rest (the paper's rule).
    weight_decay: float = 0.05
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    #: Samples per process per micro-step.
    batch_size: int = 1
    #: Micro-steps per optimizer step; the global batch is batch_size × processes × grad_accum.
    grad_accum: int = 1
    #: Clip the global gradient norm to this value; ``null`` = no clipping (the paper's setting).
    max_grad_norm: float | None = 1.0


@dataclass
class ValidationConfig:
    """Which clips are held out, and how they are scored after each epoch."""

    #: ``fraction``: a seeded random share; ``names``: the clip names listed in ``names_file``;
    #: ``column``: clips whose ``column`` (in ``table``, a CSV with a ``name`` column) is one of ``values``;
    #: ``none``: no validation (the last checkpoint is also the best).
    by: Literal["fraction", "names", "column", "none"] = "fraction"
    fraction: float = 0.1
    seed: int = 42
    names_file: str | None = None
    table: str | None = None
    column: str | None = None
    values: list[str] = field(default_factory=list)
    #: Task whose generations are scored; ``null`` = ``emotion`` when the stage trains it, else its first task.
    task: str | None = None
    #: Cap on validation clips scored per epoch (``null`` = all), to keep big runs' epochs short; the
    #: capped set is spread evenly over the held-out list.
    max_samples: int | None = None
    max_new_tokens: int = 64
    #: Generations written to ``samples/`` per epoch for reading.
    examples: int = 8
    #: Validation samples per generation batch.
    batch_size: int = 8


@dataclass
class StageConfig:
    """One stage of the recipe: what it reads, which task tags it trains, for how long."""

    name: str = "stage"
    #: An annotation list (``MERR_coarse_grained.txt``-style ``name count label [valence]``); its JSON
    #: sibling (same stem) holds the captions, ``transcription_en_all.csv`` beside it the subtitles.
    annotations: str = ""
    #: Task tags sampled uniformly per sample: ``emotion`` (the label word), ``reason`` (the coarse
    #: caption), ``reason_v2`` (the fine reasoning).
    tasks: list[str] = field(default_factory=lambda: ["emotion"])
    epochs: int = 1
    #: Optimizer steps per epoch; ``null`` = one pass over the training clips.
    steps_per_epoch: int | None = None
    #: ``previous_best`` / ``previous_last``: start from the stage before (ignored for the first stage);
    #: a path: a model folder (e.g. converted official weights); ``none``: fresh projector + LoRA.
    init: str = "previous_best"
    #: Overrides of ``optim`` for this stage only (same keys).
    optim: dict[str, Any] = field(default_factory=dict)


@dataclass
class CheckpointConfig:
    #: Save every N optimizer steps (0 = only at epoch ends).
    every_steps: int = 0
    #: Step/epoch checkpoints kept (the best model folder is kept apart).
    keep_last: int = 2


@dataclass
class DataConfig:
    #: Feature folder written by ``emollama features`` (or its ``--official`` route).
    features: str = "features"
    #: A clip in the annotations with no features: ``skip`` it (listed in the run log) or ``error``.
    missing_features: Literal["skip", "error"] = "skip"
    #: Label set the annotations' labels must belong to and validation is scored in.
    label_set: str = "merr9"
    #: Subtitle table (``name`` + ``sentence``/``sentence_en``); ``null`` = ``transcription_en_all.csv``
    #: beside each annotation file, if present.
    subtitles: str | None = None


@dataclass
class TrainConfig:
    """A whole run: the model, the data, the stages and how to optimise."""

    name: str = "run"
    #: A model config YAML path, or the name of a packaged one (``tiny``, ``emotion-llama-7b`` …).
    model: str = "emotion-llama-7b"
    data: DataConfig = field(default_factory=DataConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    stages: list[StageConfig] = field(default_factory=list)
    optim: OptimConfig = field(default_factory=OptimConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    #: Autocast precision: ``no`` (float32), ``bf16`` or ``fp16`` (GPU only).
    precision: Literal["no", "bf16", "fp16"] = "no"
    seed: int = 42
    #: Extra parameter-name substrings to train besides the projector and LoRA (e.g. ``lm_head``).
    unfreeze: list[str] = field(default_factory=list)
    #: Optimizer steps between two training-log lines in ``metrics.jsonl``.
    log_every: int = 1
    #: Folder relative paths resolve against; set by the loader, never serialised.
    base_dir: str | None = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------------------ (de)serialise
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("base_dir")
        return json.loads(json.dumps(data))

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: str | Path | None = None) -> TrainConfig:
        cfg = build_dataclass(cls, data, "train config")
        cfg.base_dir = str(base_dir) if base_dir is not None else None
        cfg.validate()
        return cfg

    def validate(self) -> None:
        from emollama.labels import get_label_set
        from emollama.model.prompts import TASKS

        if not self.stages:
            raise ConfigError("the train config lists no stages.")
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ConfigError(f"stage names must be unique, got {names}.")
        try:
            get_label_set(self.data.label_set)
        except Exception as exc:  # noqa: BLE001 - the label module's own error is the message
            raise ConfigError(f"data.label_set: {exc}") from None
        known = {f.name for f in dataclasses.fields(OptimConfig)}
        for i, st in enumerate(self.stages):
            if not st.annotations:
                raise ConfigError(f"stages[{i}] ({st.name}) needs `annotations` (an annotation list file).")
            bad = [t for t in st.tasks if t not in ("emotion", "reason", "reason_v2")]
            if bad or not st.tasks:
                raise ConfigError(f"stages[{i}].tasks must be a non-empty list of emotion/reason/reason_v2, "
                                  f"got {st.tasks} (the model knows {', '.join(TASKS)}).")
            unknown = sorted(set(st.optim) - known)
            if unknown:
                raise ConfigError(f"Unknown key(s) in stages[{i}].optim: {', '.join(unknown)} "
                                  f"(known: {', '.join(sorted(known))}).")
            if st.epochs < 1 or (st.steps_per_epoch is not None and st.steps_per_epoch < 1):
                raise ConfigError(f"stages[{i}]: epochs and steps_per_epoch must be at least 1.")
            self.stage_optim(i)
        o = self.optim
        if o.batch_size < 1 or o.grad_accum < 1:
            raise ConfigError("optim.batch_size and optim.grad_accum must be at least 1.")
        v = self.validation
        if v.by == "fraction" and not 0 < v.fraction < 1:
            raise ConfigError(f"validation.fraction must be between 0 and 1, got {v.fraction}.")
        if v.by == "names" and not v.names_file:
            raise ConfigError("validation.by=names needs validation.names_file.")
        if v.by == "column" and not (v.table and v.column and v.values):
            raise ConfigError("validation.by=column needs validation.table, validation.column and validation.values.")

    def stage_optim(self, index: int) -> OptimConfig:
        """``optim`` with stage ``index``'s overrides applied (checked like the rest of the config)."""
        merged = {**dataclasses.asdict(self.optim), **self.stages[index].optim}
        return build_dataclass(OptimConfig, merged, f"stages[{index}].optim")

    def resolve(self, path: str | None) -> Path | None:
        return resolve_path(self.base_dir, path)

    def model_config(self) -> EmotionLlamaConfig:
        """The model config ``model`` names: a YAML/JSON path, a model folder, or a packaged name."""
        return load_model_config(self.model, self.base_dir)


# ------------------------------------------------------------------------------------------ loading
def load_train_config(name_or_path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """A recipe by packaged name (``coarse-to-fine``) or YAML path, with ``a.b=value`` overrides applied."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        base = path.resolve().parent
    else:
        packaged = PACKAGED / f"{name_or_path}.yaml"
        if not packaged.is_file():
            names = ", ".join(sorted(p.stem for p in PACKAGED.glob("*.yaml")))
            raise ConfigError(f"train config {str(name_or_path)!r} is neither a file nor a packaged recipe ({names}).")
        path, base = packaged, Path.cwd()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"train config {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"train config {path} must be a mapping at the top level.")
    for item in overrides or []:
        apply_override(data, item)
    return TrainConfig.from_dict(data, base_dir=base)


def apply_override(data: dict[str, Any], item: str) -> None:
    """``optim.lr=1e-5`` / ``stages.fine.epochs=3`` / ``stages.0.tasks=[emotion]`` into ``data`` in place.

    The value is read as YAML (numbers, lists, ``null``); a stage may be named by index or by name.
    Keys that do not exist are left for the dataclass check, which names them.
    """
    if "=" not in item:
        raise ConfigError(f"--set expects KEY=VALUE (e.g. optim.lr=1e-5), got {item!r}.")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    parts = key.strip().split(".")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = node[_list_index(node, part, ".".join(parts[: i + 1]))]
        else:
            node = node.setdefault(part, {})
            if not isinstance(node, dict | list):
                raise ConfigError(f"--set {key}: {'.'.join(parts[: i + 1])} is not a section.")
    last = parts[-1]
    if isinstance(node, list):
        node[_list_index(node, last, key)] = value
    else:
        node[last] = value


def _list_index(items: list[Any], part: str, where: str) -> int:
    if part.isdigit() and int(part) < len(items):
        return int(part)
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == part:
            return i
    raise ConfigError(f"--set {where}: no stage {part!r} (use an index or a stage name).")
