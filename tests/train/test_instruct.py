"""`emollama train`: it learns from the features, resumes exactly after SIGKILL, splits over processes
without changing the result, hands stage 1's best weights to stage 2, and refuses bad input clearly."""

from __future__ import annotations

import errno
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from emollama.features.store import FeatureStore, FeatureStoreError
from emollama.merr.exports import ExportRecord, export_emotion_llama
from emollama.model.config import ConfigError, EmotionLlamaConfig
from emollama.model.emotion_llama import EmotionLlama
from emollama.train.instruct.config import load_train_config
from emollama.train.instruct.data import AnnotationError, normalize_target, read_annotations, split
from emollama.train.instruct.recipe import CoarseToFineRecipe, TrainError

from .conftest import LABELS, emollama, make_workspace, train_losses, val_records, write_recipe

STAGES_2 = """
validation: {by: fraction, fraction: 0.2, max_new_tokens: 6}
stages:
  - {name: coarse, annotations: ann/MERR_coarse_grained.txt, tasks: [emotion, reason], epochs: 2, steps_per_epoch: 8,
     init: none}
  - {name: fine, annotations: ann/MERR_coarse_grained.txt, tasks: [reason], epochs: 1, steps_per_epoch: 4}
optim: {lr: 1.0e-3, warmup_steps: 2, batch_size: 2}
checkpoint: {every_steps: 3, keep_last: 2}
"""


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workspace(tmp_path_factory.mktemp("instruct"))


@pytest.fixture(scope="module")
def full_run(ws: Path) -> Path:
    """One uninterrupted two-stage run, shared by the resume, hand-over and best-folder tests."""
    write_recipe(ws, "two", STAGES_2)
    res = emollama("train", "--config", "two.yaml", "--out", "run_full", cwd=ws)
    assert res.returncode == 0, res.stderr + res.stdout
    return ws / "run_full"


# ------------------------------------------------------------------------------------------ data
def test_our_export_and_official_files_read_into_the_same_samples(tmp_path: Path) -> None:
    rows = [ExportRecord(name=f"s{i}", media_path=f"/v/s{i}.mp4", label=label, label_source="ground_truth",
                         label_confidence=None, caption=f"He frowns. Tone is {label}!", peak_index=2, peak_time_s=0.1,
                         au_list=("AU04",), subtitle=f"line {i}", fine=f"Reasoning: {label} (clearly).",
                         fine_source="llm", n_frames=40)
            for i, label in enumerate(["sad", "angry", "happy"])]
    ours = tmp_path / "ours"
    export_emotion_llama(rows, ours)
    official = tmp_path / "official"
    official.mkdir()
    # The original files: valence as a float, MER2024's subtitle column, extra JSON fields.
    (official / "MERR_coarse_grained.txt").write_text(
        "".join(f"{r.name} 40 {r.label} -1.174107\n" for r in rows), encoding="utf-8")
    (official / "MERR_coarse_grained.json").write_text(json.dumps(
        {r.name: {"caption": r.caption, "peak_index": 2, "AU_list": ["AU04"]} for r in rows}), encoding="utf-8")
    (official / "MERR_fine_grained.txt").write_text(
        "".join(f"{r.name} 40 {r.label} -10\n" for r in rows), encoding="utf-8")
    (official / "MERR_fine_grained.json").write_text(json.dumps(
        {r.name: {"smp_reason_caption": r.fine, "reason_caption": "old"} for r in rows}), encoding="utf-8")
    (official / "transcription_en_all.csv").write_text(
        "name,sentence_en\n" + "".join(f"{r.name},{r.subtitle}\n" for r in rows), encoding="utf-8")
    for stem in ("MERR_coarse_grained", "MERR_fine_grained"):
        a = read_annotations(ours / f"{stem}.txt")
        b = read_annotations(official / f"{stem}.txt")
        assert a == b
        assert [s.label for s in a] == ["sad", "angry", "happy"]
        assert all(s.subtitle == f"line {i}" for i, s in enumerate(a))
    # `emollama pseudo-label` output (path,label,confidence,source) is a label list too.
    (official / "pseudo.csv").write_text("path,label,confidence,source\n/v/s0.mp4,Sad,0.9,pseudo\n"
                                         "/v/s1.mp4,anger,0.8,pseudo\n", encoding="utf-8")
    pseudo = read_annotations(official / "pseudo.csv")
    assert [(s.name, s.label, s.subtitle) for s in pseudo] == [("s0", "sad", "line 0"), ("s1", "angry", "line 1")]
    fine = read_annotations(ours / "MERR_fine_grained.txt")
    assert fine[0].fine == "Reasoning: sad (clearly)."
    assert normalize_target(fine[0].fine) == "reasoning sad clearly"


def test_validation_split_never_overlaps_training_and_is_the_same_in_every_stage(ws: Path) -> None:
    cfg = load_train_config(write_recipe(ws, "split", STAGES_2))
    samples = read_annotations(ws / "ann" / "MERR_coarse_grained.txt")
    train, val = split(samples, cfg.validation, None)
    assert val and train and not {s.name for s in train} & {s.name for s in val}
    _, val_sub = split(samples[::2], cfg.validation, None)  # another stage's list: same clips held out
    assert {s.name for s in val_sub} == {s.name for s in val} & {s.name for s in samples[::2]}


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"),
    ("clip000 10\n", "not `name count label"),
    ("clip000 10 bored -10\n", "outside the merr9 label set"),
    ("clip000 10 happy\nclip000 10 sad\n", "listed twice"),
])
def test_bad_annotation_files_are_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "list.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AnnotationError, match=message):
        read_annotations(path)


# ------------------------------------------------------------------------------------------ config
def test_config_typos_and_bad_overrides_are_errors(ws: Path) -> None:
    path = write_recipe(ws, "typo", STAGES_2)
    with pytest.raises(ConfigError, match="Unknown key.*optim.*lrr"):
        load_train_config(path, ["optim.lrr=1e-4"])
    with pytest.raises(ConfigError, match="no stage 'middle'"):
        load_train_config(path, ["stages.middle.epochs=2"])
    cfg = load_train_config(path, ["optim.lr=1e-5", "stages.fine.epochs=3"])
    assert cfg.optim.lr == 1e-5 and cfg.stages[1].epochs == 3
    res = emollama("train", "--config", "typo.yaml", "--set", "stages.0.taskz=[emotion]", cwd=ws)
    assert res.returncode == 2 and "Unknown key" in res.stderr and "Traceback" not in res.stderr


def test_packaged_recipe_loads_by_name() -> None:
    cfg = load_train_config("coarse-to-fine")
    assert [s.name for s in cfg.stages] == ["coarse", "fine"]
    assert cfg.stages[0].tasks == ["emotion", "reason"] and cfg.stages[1].tasks == ["reason_v2"]
    assert cfg.stages[1].init == "previous_best"
    assert cfg.optim.weight_decay == 0.05 and (cfg.optim.beta1, cfg.optim.beta2) == (0.9, 0.999)
    # Its model is a packaged config too; the weights' relative paths point into the working directory.
    model = cfg.model_config()
    assert model.name == "emotion-llama-7b"
    assert model.resolve(model.llm.path) == Path.cwd() / "checkpoints" / "Llama-2-7b-chat-hf"


# ------------------------------------------------------------------------------------------ learning
def test_train_command_learns_labels_from_the_features(ws: Path) -> None:
    write_recipe(ws, "learn", """
validation: {by: fraction, fraction: 0.2, max_new_tokens: 6}
stages:
  - {name: coarse, annotations: ann/MERR_coarse_grained.txt, tasks: [emotion], epochs: 4, steps_per_epoch: 25,
     init: none}
optim: {lr: 3.0e-3, min_lr: 1.0e-4, warmup_lr: 1.0e-4, warmup_steps: 5, weight_decay: 0.0, batch_size: 4}
""")
    res = emollama("train", "--config", "learn.yaml", "--out", "run_learn", cwd=ws)
    assert res.returncode == 0, res.stderr + res.stdout
    run = ws / "run_learn"
    losses = [loss for _, _, loss in train_losses(run)]
    assert losses[0] > 3.0 and sum(losses[-5:]) / 5 < 0.3, losses
    last = val_records(run)[-1]
    assert last["n"] >= 3 and last["accuracy"] >= 0.8, last  # held-out clips: the label follows the audio features
    assert (run / "curves.png").stat().st_size > 1000
    # The best folder loads as a model and says the label of a clip it never trained on.
    model = EmotionLlama.from_pretrained(run / "best")
    store = FeatureStore.open(ws / "features")
    from emollama.features.store import collate_features
    from emollama.model.processor import EmotionLlamaProcessor

    proc = EmotionLlamaProcessor.from_config(model.cfg)
    held = [json.loads(line)["name"] for line in (run / "coarse" / "samples" / "epoch-004.jsonl").open()]
    truth = [LABELS[int(name[4:]) % 3] for name in held]
    batch = proc.collate([proc.encode(proc.user_prompt("emotion", "well here we are"))] * len(held),
                         padding_side="left")
    out = model.eval().generate(batch["input_ids"], batch["attention_mask"],
                                collate_features([store.read(n) for n in held]), stop_ids=proc.stop_ids,
                                max_new_tokens=6)
    said = [proc.decode(o) for o in out]
    assert sum(s == t for s, t in zip(said, truth, strict=True)) >= 0.8 * len(held), (said, truth)


def test_sigkill_mid_epoch_then_resume_gives_identical_losses_and_weights(ws: Path, full_run: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "emollama", "train", "--config", "two.yaml", "--out", "run_kill"],
                            cwd=ws, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Kill once a checkpoint inside epoch 2 exists (8 steps per epoch; one every 3 steps: 9, 12, 15).
    # state.json is polled rather than a checkpoint folder: keep_last prunes folders while we wait.
    wait_for_step(ws / "run_kill", 9, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (ws / "run_kill" / "best").exists()  # it really was stopped before the end
    res = emollama("train", "--resume", "run_kill", cwd=ws)
    assert res.returncode == 0, res.stderr + res.stdout
    assert train_losses(ws / "run_kill") == train_losses(full_run)
    a, b = load_file(str(full_run / "best" / "model.safetensors")), load_file(str(ws / "run_kill" / "best" /
                                                                              "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def wait_for_step(run: Path, step: int, proc: subprocess.Popen, timeout: float = 180) -> None:
    """Until state.json names a checkpoint at ``step`` of the first stage or later (fails if the run ends first)."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            state = json.loads((run / "state.json").read_text())
            if state["position"]["stage"] > 0 or state["position"]["global_step"] >= step:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.02)
    raise AssertionError(f"the run ended or timed out before a checkpoint at step {step} (rc {proc.poll()})")


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_ctrl_c_or_sigterm_saves_a_checkpoint_and_prints_the_resume_command(ws: Path, full_run: Path,
                                                                             sig: str) -> None:
    # A process inherits an ignored SIGINT (libraries loaded earlier in the test session may have set
    # it), and a Python started that way ignores Ctrl-C: give the child the default, as a terminal does.
    # SIGTERM is tested on a child that ignores SIGINT, as a job started with `&` does.
    run = f"run_{sig.lower()}"
    reset = (lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)) if sig == "SIGINT" else \
        (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    proc = subprocess.Popen([sys.executable, "-m", "emollama", "train", "--config", "two.yaml", "--out", run],
                            cwd=ws, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=reset)
    wait_for_step(ws / run, 3, proc)
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"Resume with: emollama train --resume {run}" in " ".join(err.split()) and "Traceback" not in err
    state = json.loads((ws / run / "state.json").read_text())
    assert state["position"]["global_step"] >= 3  # the step it stopped at is saved, not only the last periodic one
    res = emollama("train", "--resume", run, cwd=ws)
    assert res.returncode == 0, res.stderr
    assert train_losses(ws / run) == train_losses(full_run)


def test_best_checkpoint_and_stage_handover(ws: Path, full_run: Path) -> None:
    vals = [v for v in val_records(full_run) if v["stage"] == "coarse"]
    best = max(vals, key=lambda v: v["weighted_f1"])  # first of equals, as the recipe keeps
    saved = json.loads((full_run / "coarse" / "best" / "validation.json").read_text())
    assert saved["step"] == best["step"]
    assert sorted(p.name for p in (full_run / "coarse" / "checkpoints").iterdir()) == \
        ["step-00000015", "step-00000016"]  # keep_last 2
    cfg = load_train_config(ws / "two.yaml")
    from emollama.cli.train import absolute

    recipe = CoarseToFineRecipe(absolute(cfg), full_run, resume=True)
    stage2 = recipe.build_model(1).trainable_state_dict()
    stage1_best = load_file(str(full_run / "coarse" / "best" / "model.safetensors"))
    assert all(torch.equal(stage2[k], stage1_best[k]) for k in stage1_best)


def test_two_processes_give_the_weights_of_one_with_the_same_global_batch(ws: Path) -> None:
    write_recipe(ws, "ddp", """
validation: {by: none}
stages:
  - {name: coarse, annotations: ann/MERR_coarse_grained.txt, tasks: [emotion, reason], epochs: 1, steps_per_epoch: 4,
     init: none}
optim: {lr: 1.0e-4, warmup_steps: 0, batch_size: 4, grad_accum: 1}
""")
    one = emollama("train", "--config", "ddp.yaml", "--out", "run_one", cwd=ws)
    assert one.returncode == 0, one.stderr
    two = emollama("train", "--config", "ddp.yaml", "--out", "run_two", "--set", "optim.batch_size=1",
                   "--set", "optim.grad_accum=2", cwd=ws, torchrun=2)
    assert two.returncode == 0, two.stderr[-3000:]
    a = load_file(str(ws / "run_one" / "best" / "model.safetensors"))
    b = load_file(str(ws / "run_two" / "best" / "model.safetensors"))
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5
    la, lb = train_losses(ws / "run_one"), train_losses(ws / "run_two")
    assert [s for s, _, _ in la] == [s for s, _, _ in lb]
    assert all(abs(x - y) < 1e-4 for (_, _, x), (_, _, y) in zip(la, lb, strict=True))


# ------------------------------------------------------------------------------------------ bad input
def test_missing_features_are_skipped_and_listed_or_refused(ws: Path, tmp_path: Path) -> None:
    ann = tmp_path / "list.txt"
    ann.write_text("clip000 10 happy\nnot_extracted 10 sad\n", encoding="utf-8")
    body = f"""
validation: {{by: none}}
stages:
  - {{name: s, annotations: {ann}, tasks: [emotion], epochs: 1, steps_per_epoch: 1, init: none}}
optim: {{batch_size: 1}}
"""
    write_recipe(ws, "missing", body)
    res = emollama("train", "--config", "missing.yaml", "--out", str(tmp_path / "r1"), cwd=ws)
    assert res.returncode == 0, res.stderr
    skipped = [json.loads(line) for line in (tmp_path / "r1" / "metrics.jsonl").open()
               if '"skipped"' in line]
    assert skipped[0]["no_features"] == ["not_extracted"]
    res = emollama("train", "--config", "missing.yaml", "--set", "data.missing_features=error",
                   "--out", str(tmp_path / "r2"), cwd=ws)
    assert res.returncode == 2 and "not_extracted" in res.stderr and "Traceback" not in res.stderr


def test_features_of_another_width_and_a_foreign_resume_folder_are_refused(ws: Path, full_run: Path,
                                                                          tmp_path: Path) -> None:
    cfg = EmotionLlamaConfig.from_file(ws / "model.yaml")
    cfg.projector.audio_dim = 48
    cfg.to_yaml(tmp_path / "wide.yaml")
    with pytest.raises(FeatureStoreError, match=r"audio: features \[32\] vs projector \[48\]"):
        FeatureStore.open(ws / "features").check_compatible(EmotionLlamaConfig.from_file(tmp_path / "wide.yaml"))
    res = emollama("train", "--resume", "run_full", "--config", "two.yaml", "--set", "optim.lr=5e-4", cwd=ws)
    assert res.returncode == 2 and "another config" in res.stderr
    res = emollama("train", "--config", "two.yaml", "--out", "run_full", cwd=ws)
    assert res.returncode == 2 and "already holds a run" in res.stderr


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos "
                                                "No space left")])  # what torch.save raises on a full disk
def test_a_full_disk_while_saving_keeps_the_previous_checkpoint(ws: Path, tmp_path: Path, error: Exception,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_train_config(write_recipe(ws, "disk", """
validation: {by: none}
stages:
  - {name: s, annotations: ann/MERR_coarse_grained.txt, tasks: [emotion], epochs: 1, steps_per_epoch: 4, init: none}
optim: {batch_size: 1}
checkpoint: {every_steps: 2}
"""))
    from emollama.cli.train import absolute
    from emollama.train.instruct import run_state

    calls = {"n": 0}
    real = run_state.save_optimizer

    def failing(tmp: Path, optimizer: torch.optim.Optimizer) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise error
        real(tmp, optimizer)

    monkeypatch.setattr(run_state, "save_optimizer", failing)
    run = tmp_path / "run"
    with pytest.raises(TrainError, match="No space left.*previous checkpoint .*step-00000002 is intact"):
        CoarseToFineRecipe(absolute(cfg), run).train()
    assert not list((run / "s" / "checkpoints").glob(".*"))  # no half-written folder left behind
    monkeypatch.setattr(run_state, "save_optimizer", real)
    CoarseToFineRecipe(absolute(cfg), run, resume=True).train()
    assert (run / "best" / "model.safetensors").is_file()


def test_a_resume_over_changed_clips_is_refused_not_silently_shifted(ws: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from emollama.cli.train import absolute
    from emollama.errors import Interrupted

    feats = tmp_path / "features"
    shutil.copytree(ws / "features", feats)
    cfg = load_train_config(write_recipe(ws, "shift", """
validation: {by: none}
stages:
  - {name: s, annotations: ann/MERR_coarse_grained.txt, tasks: [emotion], epochs: 1, steps_per_epoch: 6,
     init: none}
optim: {batch_size: 1}
"""), [f"data.features={feats}"])
    run = tmp_path / "run"
    recipe = CoarseToFineRecipe(absolute(cfg), run)
    real = CoarseToFineRecipe.optimizer_step
    calls = {"n": 0}

    def stop_after_three(self, *args, **kwargs):  # noqa: ANN001, ANN202 - a test double of the bound method
        calls["n"] += 1
        if calls["n"] == 3:
            self._stop = True  # what the first Ctrl-C does
        return real(self, *args, **kwargs)

    monkeypatch.setattr(CoarseToFineRecipe, "optimizer_step", stop_after_three)
    with pytest.raises(Interrupted, match="step 3 of stage s"):
        recipe.train()
    (feats / "clips" / "clip004.safetensors").unlink()  # now skipped: positions would name other clips
    with pytest.raises(TrainError, match="cannot resume exactly"):
        CoarseToFineRecipe(absolute(cfg), run, resume=True).train()


def test_validation_names_file_tolerates_bom_header_and_paths(tmp_path: Path) -> None:
    from emollama.train.instruct.config import ValidationConfig
    from emollama.train.instruct.data import validation_names

    names = tmp_path / "val.txt"
    names.write_text("\ufeffname\nclips/clip001.mp4\nclip002\n", encoding="utf-8")
    v = ValidationConfig(by="names", names_file=str(names))
    held = validation_names(v, lambda p: Path(p))
    assert held == {"clip001", "clip002"}
    samples = read_annotations(make_list(tmp_path, ["clip001", "clip002", "clip003"]))
    train, val = split(samples, v, held)
    assert [s.name for s in val] == ["clip001", "clip002"] and [s.name for s in train] == ["clip003"]
    with pytest.raises(AnnotationError, match="holds out none"):
        split(samples, v, {"other"})


def make_list(folder: Path, names: list[str]) -> Path:
    path = folder / "list.txt"
    path.write_text("".join(f"{n} 1 happy -10\n" for n in names), encoding="utf-8")
    return path
