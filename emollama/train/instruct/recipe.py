"""Coarse-to-fine instruction tuning of Emotion-LLaMA, as one recipe that reads top to bottom.

``CoarseToFineRecipe(cfg, run_dir).train()`` runs the config's stages in order (the paper: stage 1
``[emotion]`` + ``[reason]`` on the coarse MERR set, stage 2 ``[reason_v2]`` on the fine set); each
stage starts from the previous stage's best checkpoint by itself. Per stage:

1. data — the stage's annotation list is read, split into train/validation by clip name, clips
   without features are skipped (listed) or refused, as ``data.missing_features`` says;
2. model — the LM (frozen), fresh projector + LoRA, then the starting weights (previous stage's
   best, or a model folder), wrapped by Accelerate (one process, DDP, FSDP, DeepSpeed: whatever
   ``accelerate launch`` set up — there is no home-made distributed code);
3. the loop — a global batch of ``batch_size × processes × grad_accum`` samples per optimizer step,
   taken in a seeded order (:func:`~emollama.train.instruct.data.epoch_indices`); the loss is the
   sum of answer-token losses divided by the answer tokens of the whole global batch, so any split
   over processes and micro-steps gives the same gradient as one big batch;
4. learning rate — linear warm-up then cosine to ``min_lr``, set on every optimizer step from the
   step number (so it is part of the saved position, not a separate scheduler state);
5. checkpoints every ``checkpoint.every_steps`` and at each epoch end, atomic (see
   :mod:`~emollama.train.instruct.run_state`); Ctrl-C saves one and raises with the resume command;
6. validation each epoch — loss, then generation → the project's label parser → accuracy,
   weighted F1 (the paper's metric) and UAR; the best folder is chosen on weighted F1.

Nothing here prints: progress goes to ``on_event`` (the CLI renders it) and to ``metrics.jsonl``.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from emollama.errors import EmollamaError, Interrupted
from emollama.evaluate.metrics import UNPARSED, classification_scores
from emollama.features.store import FeatureStore, collate_features
from emollama.files import atomic_write_text
from emollama.label_parsing import parse_label
from emollama.labels import get_label_set
from emollama.model.config import EmotionLlamaConfig
from emollama.model.emotion_llama import IGNORE_INDEX, EmotionLlama
from emollama.model.processor import EmotionLlamaProcessor
from emollama.model.weights import absolutise_paths, load_trainable, read_weights
from emollama.train.instruct import run_state
from emollama.train.instruct.config import OptimConfig, StageConfig, TrainConfig
from emollama.train.instruct.data import (
    AnnotationSample,
    answer_for,
    choose_task,
    epoch_indices,
    read_annotations,
    split,
    validation_names,
)

Event = dict[str, Any]
METRICS = "metrics.jsonl"
RUN_CONFIG = "train_config.yaml"
MODEL_CONFIG = "model_config.json"


class TrainError(EmollamaError):
    """The run cannot start or continue (bad data, a resume folder from another config, a failed save)."""


@dataclass
class Position:
    """Where a run is: the next optimizer step to take. Saved in every checkpoint."""

    stage: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0  # optimizer steps taken in this stage
    best_f1: float | None = None
    best_step: int | None = None
    finished: list[str] = field(default_factory=list)  # names of completed stages
    #: What a resume must match: processes × batch × accumulation, steps, and a hash of the
    #: stage's training/validation clip names (positions name samples only within one layout).
    layout: str = ""


# ------------------------------------------------------------------------------------------ helpers
def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Decay on ≥2-D trainable weights that are not norms or biases, none on the rest (the paper's rule)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        plain = p.ndim < 2 or "bias" in name or "norm" in name or ".ln" in name or "_ln" in name
        (no_decay if plain else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_at(step: int, total: int, o: OptimConfig) -> float:
    """Linear warm-up from ``warmup_lr`` to ``lr`` over ``warmup_steps``, then cosine down to ``min_lr``."""
    if step < o.warmup_steps:
        return o.warmup_lr + (o.lr - o.warmup_lr) * step / max(1, o.warmup_steps)
    span = max(1, total - o.warmup_steps)
    progress = min(1.0, (step - o.warmup_steps) / span)
    return o.min_lr + 0.5 * (o.lr - o.min_lr) * (1 + math.cos(math.pi * progress))


def _attempt(write: Callable[[], object]) -> str | None:
    """Run one checkpoint write; the reason if it failed (torch.save reports a full disk as RuntimeError)."""
    try:
        write()
    except (OSError, RuntimeError) as exc:
        return getattr(exc, "strerror", None) or " ".join(str(exc).split())[:200]
    return None


def stage_layout(world: int, o: OptimConfig, steps_per_epoch: int, total: int,
                 train: list[AnnotationSample], val: list[AnnotationSample]) -> str:
    """A fingerprint of what positions mean in a stage; a resume must see the same one."""
    import hashlib

    names = hashlib.sha256("\n".join([*(s.name for s in train), "|", *(s.name for s in val)]).encode()).hexdigest()
    return f"{world}x{o.batch_size}x{o.grad_accum}, {steps_per_epoch}x{total // steps_per_epoch} steps|{names[:16]}"


def resolved_config_text(cfg: TrainConfig) -> str:
    import yaml

    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


# ------------------------------------------------------------------------------------------ recipe
class CoarseToFineRecipe:
    """One run of a :class:`TrainConfig` into ``run_dir`` (see the module docstring)."""

    def __init__(self, cfg: TrainConfig, run_dir: str | Path, *, resume: bool = False,
                 on_event: Callable[[Event], None] | None = None, accelerator: Any = None) -> None:
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.acc = accelerator or Accelerator(mixed_precision=cfg.precision, cpu=not torch.cuda.is_available())
        self.main = self.acc.is_main_process
        kind = str(self.acc.distributed_type).rsplit(".", 1)[-1]
        if kind in ("FSDP", "DEEPSPEED", "MEGATRON_LM", "XLA"):
            # Their sharded optimizer/weight states need other save/resume code than this loop has;
            # running anyway would write checkpoints that cannot be resumed.
            raise TrainError(f"this recipe runs on one process or DDP (torchrun / accelerate multi-GPU), not {kind}: "
                             "its checkpoints would not resume. The trainable part (projector + LoRA) is small, "
                             "so DDP with the frozen LLM in bf16 on every GPU is the supported route.")
        if self.acc.gradient_accumulation_steps != 1:
            # Accelerate would divide the already normalised loss again (ACCELERATE_GRADIENT_ACCUMULATION_STEPS).
            raise TrainError("set gradient accumulation with optim.grad_accum in the train config, not with "
                             "accelerate's --gradient_accumulation_steps (the loop accumulates itself).")
        # Only the main process reports: N processes must not draw N progress bars.
        self.emit = (on_event if self.main else None) or (lambda _e: None)
        set_seed(cfg.seed, device_specific=False)
        self.model_cfg: EmotionLlamaConfig = cfg.model_config()
        self.label_set = get_label_set(cfg.data.label_set)
        self.store = FeatureStore.open(self._path(cfg.data.features))
        self.store.check_compatible(self.model_cfg)
        self.processor = EmotionLlamaProcessor.from_config(self.model_cfg)
        self._stop = False
        self.position = self._start(resume)

    def _path(self, value: str) -> Path:
        path = self.cfg.resolve(value)
        assert path is not None
        return path

    # -------------------------------------------------------------------------- run folder
    def _start(self, resume: bool) -> Position:
        text = resolved_config_text(self.cfg)
        saved = self.run_dir / RUN_CONFIG
        if resume:
            if not saved.is_file():
                raise TrainError(f"{self.run_dir} is not a run folder (no {RUN_CONFIG}); nothing to resume.")
            if saved.read_text(encoding="utf-8") != text:
                raise TrainError(f"{self.run_dir} was started with another config; resume it with its own "
                                 f"({saved}) or start a new run folder.")
            pinned = self.run_dir / MODEL_CONFIG
            if pinned.is_file() and pinned.read_text(encoding="utf-8") != self._model_config_text():
                raise TrainError(f"the model config resolves differently than when {self.run_dir} started (an "
                                 f"edited model YAML, or weights paths relative to another working directory); "
                                 f"the run's is {pinned}.")
            state = run_state.read_state(self.run_dir)
            if state is None:
                return Position()  # killed before the first checkpoint: start over in the same folder
            return Position(**state["position"])
        taken = saved.is_file() or (self.run_dir / run_state.STATE).is_file()
        self.acc.wait_for_everyone()  # every process looks before the main one writes
        if taken:
            raise TrainError(f"{self.run_dir} already holds a run; resume it with --resume {self.run_dir} "
                             "or choose a new folder.")
        if self.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(saved, text)
            atomic_write_text(self.run_dir / MODEL_CONFIG, self._model_config_text())
            (self.run_dir / METRICS).write_text("", encoding="utf-8")
        self.acc.wait_for_everyone()
        return Position()

    def _model_config_text(self) -> str:
        cfg = EmotionLlamaConfig.from_dict(self.model_cfg.to_dict(), base_dir=self.model_cfg.base_dir)
        absolutise_paths(cfg)
        return json.dumps(cfg.to_dict(), indent=1, sort_keys=True) + "\n"

    def _log(self, record: dict[str, Any]) -> None:
        if self.main:
            with open(self.run_dir / METRICS, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
        self.emit(record)

    def _truncate_metrics(self, stage: str, global_step: int) -> None:
        """Drop ``stage``'s train/val/checkpoint lines after ``global_step`` (an interrupted attempt's)."""
        path = self.run_dir / METRICS
        if not self.main or not path.is_file():
            return
        keep = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by the kill
            if rec.get("stage") == stage and rec.get("kind") != "skipped" and rec.get("step", 0) > global_step:
                continue
            keep.append(line)
        atomic_write_text(path, "".join(f"{line}\n" for line in keep))

    # -------------------------------------------------------------------------- data
    def stage_data(self, stage: StageConfig) -> tuple[list[AnnotationSample], list[AnnotationSample]]:
        samples = read_annotations(self._path(stage.annotations), label_set=self.label_set.name,
                                   subtitles=self.cfg.resolve(self.cfg.data.subtitles))
        missing = [s.name for s in samples if not self.store.has(s.name)]
        if missing and self.cfg.data.missing_features == "error":
            more = f" … (+{len(missing) - 10} more)" if len(missing) > 10 else ""
            raise TrainError(f"{len(missing)} clip(s) of {stage.annotations} have no features in "
                             f"{self.store.root}: {', '.join(missing[:10])}{more} (extract them with "
                             "`emollama features`, or set data.missing_features: skip).")
        no_task = [s.name for s in samples if not s.tasks(stage.tasks)]
        dropped = set(missing) | set(no_task)
        if dropped:
            self._log({"kind": "skipped", "stage": stage.name, "no_features": missing, "no_target": no_task})
        samples = [s for s in samples if s.name not in dropped]
        held = validation_names(self.cfg.validation, self.cfg.resolve)
        train, val = split(samples, self.cfg.validation, held)
        if not train:
            raise TrainError(f"stage {stage.name}: no training clips left after the validation split "
                             f"and skipped clips ({len(dropped)} skipped, {len(val)} held out).")
        return train, val

    def encode(self, sample: AnnotationSample, task: str, rng: random.Random | None,
               with_answer: bool = True) -> Any:
        instruction = self.processor.pools.instruction(task, rng=rng, label_set=self.label_set.name)
        user = self.processor.user_prompt(task, sample.subtitle, instruction, label_set=self.label_set.name)
        return self.processor.encode(user, answer_for(sample, task) if with_answer else None)

    def features(self, samples: list[AnnotationSample]) -> Any:
        return collate_features([self.store.read(s.name) for s in samples]).to(self.acc.device)

    # -------------------------------------------------------------------------- model
    def build_model(self, index: int) -> EmotionLlama:
        stage = self.cfg.stages[index]
        model = EmotionLlama.from_config(self.model_cfg, device=self.acc.device)
        for name, p in model.named_parameters():
            if any(part in name for part in self.cfg.unfreeze):
                p.requires_grad_(True)
        init = stage.init
        source: Path | None = None
        if init in ("previous_best", "previous_last"):
            if index > 0:
                prev = self.cfg.stages[index - 1].name
                source = self.run_dir / prev / ("best" if init == "previous_best" else "last")
        elif init != "none":
            source = self._path(init)
        if source is not None:
            run_state.recover(source)
            if not (source / "model.safetensors").is_file():
                raise TrainError(f"stage {stage.name} starts from {source}, which holds no model.safetensors.")
            load_trainable(model, read_weights(source))
        return model

    # -------------------------------------------------------------------------- training
    def train(self) -> Path:
        """Run every unfinished stage; returns the final best model folder (``RUN_DIR/best``)."""
        for index, stage in enumerate(self.cfg.stages):
            if stage.name in self.position.finished:
                continue
            self.run_stage(index)
        final = self.run_dir / self.cfg.stages[-1].name / "best"
        if self.main:
            run_state.recover(final)
            run_state.recover(self.run_dir / "best")
            run_state.copy_folder(final, self.run_dir / "best")
            self._plot()
        self.acc.wait_for_everyone()
        self.emit({"kind": "done", "best": str(self.run_dir / "best")})
        return self.run_dir / "best"

    def run_stage(self, index: int) -> None:
        cfg, acc = self.cfg, self.acc
        stage = cfg.stages[index]
        optim = cfg.stage_optim(index)
        train, val = self.stage_data(stage)
        world = acc.num_processes
        per_step = optim.batch_size * world * optim.grad_accum
        steps_per_epoch = stage.steps_per_epoch or max(1, math.ceil(len(train) / per_step))
        total = steps_per_epoch * stage.epochs
        stage_dir = self.run_dir / stage.name
        layout = stage_layout(acc.num_processes, optim, steps_per_epoch, total, train, val)
        resuming = self.position.stage == index and self.position.global_step > 0
        if resuming and self.position.layout != layout:
            raise TrainError(f"stage {stage.name} cannot resume exactly: its processes, batch, steps or clips differ "
                             f"from the checkpoint's (now {layout.split('|')[0]}, then "
                             f"{self.position.layout.split('|')[0] or '?'}; or features/annotations changed). "
                             "Resume with the same launch command and data.")
        if optim.warmup_steps >= total:
            self._log({"kind": "warning", "stage": stage.name,
                       "message": f"warmup_steps ({optim.warmup_steps}) ≥ the stage's {total} steps: the learning "
                                  f"rate never reaches optim.lr"})
        # Each stage starts from its own seed, so a stage begun after a resume draws what it would have drawn.
        from accelerate.utils import set_seed

        set_seed(cfg.seed + index, device_specific=True)
        run_state.recover(stage_dir / "best")
        model = self.build_model(index)
        optimizer = torch.optim.AdamW(param_groups(model, optim.weight_decay), lr=optim.lr,
                                      betas=(optim.beta1, optim.beta2), eps=optim.eps)
        pos = self.position if self.position.stage == index else Position(stage=index, finished=self.position.finished)
        pos.layout = layout
        if resuming:
            ckpt = self.run_dir / run_state.read_state(self.run_dir)["latest"]
            run_state.recover(ckpt)
            load_trainable(model, read_weights(ckpt))
            run_state.load_optimizer(ckpt, optimizer)
            run_state.load_rng(ckpt, acc.process_index)
        # Log lines of steps after the starting point (a killed attempt) are about to be redone.
        self._truncate_metrics(stage.name, pos.global_step)
        model, optimizer = acc.prepare(model, optimizer)
        self.emit({"kind": "stage", "stage": stage.name, "index": index, "train": len(train), "val": len(val),
                   "steps": total, "start_step": pos.global_step, "steps_per_epoch": steps_per_epoch})
        self.model, self.optimizer, self.pos, self.stage = model, optimizer, pos, stage
        params = [p for p in model.parameters() if p.requires_grad]
        with self._ctrl_c():
            while pos.epoch < stage.epochs:
                while pos.step_in_epoch < steps_per_epoch:
                    started = time.perf_counter()
                    loss = self.optimizer_step(train, optim, pos, per_step, total, params)
                    pos.step_in_epoch += 1
                    pos.global_step += 1
                    if pos.global_step % max(1, cfg.log_every) == 0 or pos.step_in_epoch == steps_per_epoch:
                        self._log({"kind": "train", "stage": stage.name, "epoch": pos.epoch + 1,
                                   "step": pos.global_step, "total": total, "loss": loss,
                                   "lr": lr_at(pos.global_step - 1, total, optim),
                                   "samples_per_s": per_step / max(1e-9, time.perf_counter() - started)})
                    every = cfg.checkpoint.every_steps
                    if every and pos.global_step % every == 0 and pos.step_in_epoch < steps_per_epoch:
                        self.save_checkpoint(stage_dir)
                    self._stop_if_asked(stage_dir)
                # The epoch's steps are done and its validation pending: a checkpoint taken now (Ctrl-C)
                # resumes into the validation, never past it.
                self.validate(val, stage_dir, epoch=pos.epoch + 1)
                pos.epoch += 1
                pos.step_in_epoch = 0
                self.save_checkpoint(stage_dir)
                self._stop_if_asked(stage_dir)
        last = self.run_dir / run_state.read_state(self.run_dir)["latest"]
        if self.main:
            model_files = ("config.json", "model.safetensors", "instructions.yaml")
            run_state.copy_folder(last, stage_dir / "last", model_files)
            if not val:  # no validation: the last weights are also the best
                run_state.copy_folder(last, stage_dir / "best", model_files)
        pos.finished = [*pos.finished, stage.name]
        self.position = Position(stage=index + 1, finished=pos.finished)
        if self.main:
            state = run_state.read_state(self.run_dir) or {}
            run_state.write_state(self.run_dir, {**state, "position": self.position.__dict__})
        acc.wait_for_everyone()

    @contextmanager
    def _ctrl_c(self) -> Iterator[None]:
        """First Ctrl-C or SIGTERM: finish the current step, save, stop. Second: stop at once.

        Stopping only at step boundaries keeps a saved position exact, and every process stops at
        the same step (the flag is combined over processes), so DDP never mismatches collectives.
        SIGTERM is what schedulers (Slurm, Kubernetes) and ``kill`` send, and what reaches a job
        started with ``&`` (whose Ctrl-C is ignored), so it gets the same graceful stop; the
        last checkpoint always stays when the second signal stops at once.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        watched = [signal.SIGTERM]
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # e.g. a `&` job: Ctrl-C is not for us
            watched.append(signal.SIGINT)

        def handler(sig: int, _frame: object) -> None:
            if self._stop:
                for s in watched:
                    signal.signal(s, signal.SIG_DFL if s == signal.SIGTERM else signal.default_int_handler)
                raise KeyboardInterrupt
            self._stop = True
            name = "Ctrl-C" if sig == signal.SIGINT else "SIGTERM"
            self.emit({"kind": "stopping", "message": f"{name}: saving at the end of this step "
                                                      "(send it again to stop without saving)"})

        previous = {s: signal.signal(s, handler) for s in watched}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    def _stop_if_asked(self, stage_dir: Path) -> None:
        flag = torch.tensor(float(self._stop), device=self.acc.device)
        if self.acc.num_processes > 1:
            flag = self.acc.reduce(flag, reduction="sum")
        if float(flag) > 0:
            self.save_checkpoint(stage_dir)
            raise Interrupted(f"stopped at step {self.pos.global_step} of stage {self.stage.name}; the checkpoint "
                              f"is saved. Resume with: emollama train --resume {self.run_dir}")

    def optimizer_step(self, train: list[AnnotationSample], optim: OptimConfig, pos: Position, per_step: int,
                       total: int, params: list[torch.nn.Parameter]) -> float:
        """One optimizer step over the global batch at ``pos``; returns its mean answer-token loss."""
        acc, stage = self.acc, self.stage
        start = pos.step_in_epoch * per_step
        order = epoch_indices(len(train), per_step, seed=self.cfg.seed, stage=stage.name, epoch=pos.epoch,
                              start=start)
        encoded = []
        for k, i in zip(range(start, start + per_step), order, strict=True):
            rng = random.Random(f"{self.cfg.seed}:{stage.name}:{pos.epoch}:{k}:task")
            sample = train[i]
            encoded.append((sample, self.encode(sample, choose_task(sample, stage.tasks, rng), rng)))
        n_tokens = sum(sum(1 for t in e.labels[1:] if t != IGNORE_INDEX) for _, e in encoded)
        world, rank, bs = acc.num_processes, acc.process_index, optim.batch_size
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(pos.global_step, total, optim)
        loss_sum = torch.zeros((), device=acc.device)
        for micro in range(optim.grad_accum):
            first = micro * bs * world + rank * bs
            mine = encoded[first : first + bs]
            batch = {k: v.to(acc.device) for k, v in self.processor.collate([e for _, e in mine]).items()}
            feats = self.features([s for s, _ in mine])
            last_micro = micro == optim.grad_accum - 1
            ctx = acc.no_sync(self.model) if not last_micro else nullcontext()
            with ctx, acc.autocast():
                logits, _ = self.model(batch["input_ids"], batch["attention_mask"], feats)
                token_loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), batch["labels"][:, 1:].flatten(),
                                             ignore_index=IGNORE_INDEX, reduction="sum")
                # DDP averages gradients over processes: × world makes the result sum / all tokens.
                acc.backward(token_loss * world / max(1, n_tokens))
            loss_sum += token_loss.detach()
        if optim.max_grad_norm is not None:
            acc.clip_grad_norm_(params, optim.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        total_loss = acc.reduce(loss_sum, reduction="sum") if world > 1 else loss_sum
        return float(total_loss) / max(1, n_tokens)

    # -------------------------------------------------------------------------- checkpoints
    def save_checkpoint(self, stage_dir: Path) -> Path:
        """Trainable weights + optimizer + every process's RNG + the position, atomically."""
        acc, pos = self.acc, self.pos
        final = stage_dir / "checkpoints" / f"step-{pos.global_step:08d}"
        tmp = run_state.temp_dir(final)
        error = _attempt(lambda: run_state.begin(final)) if self.main else None
        acc.wait_for_everyone()  # outside any try: every process reaches the same collectives
        if error is None:
            error = _attempt(lambda: run_state.save_rng(tmp, acc.process_index))
        if error is None and self.main:
            error = _attempt(lambda: (acc.unwrap_model(self.model).save_pretrained(tmp),
                                      run_state.save_optimizer(tmp, self.optimizer)))
        failed = torch.tensor(float(error is not None), device=acc.device)
        if acc.num_processes > 1:  # every process learns that one failed, and all stop together
            failed = acc.reduce(failed, reduction="sum")
        if float(failed) > 0:
            prev = (run_state.read_state(self.run_dir) or {}).get("latest")
            prev = str(self.run_dir / prev) if prev else None
            if self.main:
                shutil.rmtree(tmp, ignore_errors=True)
            keep = f"the previous checkpoint {prev} is intact" if prev else "no earlier checkpoint exists"
            raise TrainError(f"could not save the checkpoint at step {pos.global_step} "
                             f"({error or 'failed in another process'}); {keep}. Free space and resume with: "
                             f"emollama train --resume {self.run_dir}")
        acc.wait_for_everyone()
        if self.main:
            run_state.commit(tmp, final)
            run_state.write_state(self.run_dir, {"latest": str(final.relative_to(self.run_dir)),
                                                 "position": pos.__dict__})
            run_state.prune(final.parent, self.cfg.checkpoint.keep_last)
        acc.wait_for_everyone()
        self._log({"kind": "checkpoint", "stage": self.stage.name, "step": pos.global_step, "path": str(final)})
        return final

    # -------------------------------------------------------------------------- validation
    def validate(self, val: list[AnnotationSample], stage_dir: Path, epoch: int) -> dict[str, Any] | None:
        """Loss and generation-based scores on the held-out clips (main process); best folder on weighted F1."""
        if not val:
            return None
        record: dict[str, Any] | None = None
        if self.main:
            record = self._score(val, stage_dir, epoch)
            self._log(record)
            f1 = record["weighted_f1"]
            if self.pos.best_f1 is None or f1 > self.pos.best_f1:
                self.pos.best_f1, self.pos.best_step = f1, self.pos.global_step
                tmp = run_state.begin(stage_dir / "best")
                self.acc.unwrap_model(self.model).save_pretrained(tmp)
                atomic_write_text(tmp / "validation.json", json.dumps(record, indent=1) + "\n")
                run_state.commit(tmp, stage_dir / "best")
            self._plot()
        if self.acc.num_processes > 1:  # every process keeps the main one's position (float64: exact)
            from accelerate.utils import broadcast

            best = torch.tensor([self.pos.best_f1 if self.pos.best_f1 is not None else -1.0,
                                 float(self.pos.best_step or 0)], device=self.acc.device, dtype=torch.float64)
            best = broadcast(best)
            if not self.main:
                self.pos.best_f1 = float(best[0]) if float(best[0]) >= 0 else None
                self.pos.best_step = int(best[1])
        self.acc.wait_for_everyone()
        return record

    @torch.no_grad()
    def _score(self, val: list[AnnotationSample], stage_dir: Path, epoch: int) -> dict[str, Any]:
        v, stage = self.cfg.validation, self.stage
        model = self.acc.unwrap_model(self.model)
        was_training = model.training
        model.eval()
        # A capped validation set is spread evenly over the list, not its head: lists are often sorted by
        # name, and the first names may all be one corpus or one speaker.
        items = [val[i * len(val) // v.max_samples] for i in range(v.max_samples)] \
            if v.max_samples and v.max_samples < len(val) else val
        task = v.task or ("emotion" if "emotion" in stage.tasks else stage.tasks[0])
        # Loss: teacher-forced, each clip with a fixed task and instruction (comparable across epochs).
        loss_sum, n_tok = 0.0, 0
        preds: list[str] = []
        texts: list[str] = []
        for lo in range(0, len(items), v.batch_size):
            chunk = items[lo : lo + v.batch_size]
            feats = self.features(chunk)
            enc = []
            for k, s in enumerate(chunk):
                rng = random.Random(f"{self.cfg.seed}:val:{lo + k}")
                enc.append(self.encode(s, choose_task(s, stage.tasks, rng), rng))
            batch = {k: t.to(self.acc.device) for k, t in self.processor.collate(enc).items()}
            with self.acc.autocast():
                logits, _ = model(batch["input_ids"], batch["attention_mask"], feats)
            labels = batch["labels"][:, 1:]
            loss_sum += float(F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels.flatten(),
                                              ignore_index=IGNORE_INDEX, reduction="sum"))
            n_tok += int((labels != IGNORE_INDEX).sum())
            prompts = [self.encode(s, task, None, with_answer=False) for s in chunk]
            gen = self.processor.collate(prompts, padding_side="left")
            with self.acc.autocast():
                out = model.generate(gen["input_ids"], gen["attention_mask"], feats,
                                     stop_ids=self.processor.stop_ids, max_new_tokens=v.max_new_tokens)
            for ids in out:
                text = self.processor.decode(ids)
                texts.append(text)
                preds.append(parse_label(text, self.label_set).label or UNPARSED)
        if was_training:
            model.train()
        truth = [s.label for s in items]
        scores = classification_scores(truth, preds, self.label_set.labels)
        examples = [{"name": s.name, "label": s.label, "task": task, "generated": t, "parsed": p}
                    for s, t, p in list(zip(items, texts, preds, strict=True))[: v.examples]]
        atomic_write_text(stage_dir / "samples" / f"epoch-{epoch:03d}.jsonl",
                          "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples))
        return {"kind": "val", "stage": stage.name, "epoch": epoch, "step": self.pos.global_step,
                "loss": loss_sum / max(1, n_tok), "accuracy": scores.accuracy, "weighted_f1": scores.weighted_f1,
                "uar": scores.uar, "n": scores.n, "unparsed": preds.count(UNPARSED), "task": task}

    def _plot(self) -> None:
        from emollama.evaluate.plots import training_curves_png

        records = []
        for line in (self.run_dir / METRICS).read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        training_curves_png(records, self.run_dir / "curves.png", title=self.cfg.name)
