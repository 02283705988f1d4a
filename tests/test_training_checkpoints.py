"""The training recipes' checkpoints: resume restores everything; a crash while saving loses nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from emollama.train.checkpoints import resume_checkpoint, save_checkpoint


def make() -> tuple[torch.nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    return model, opt, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=10)


def step(model, opt, sched) -> None:
    opt.zero_grad()
    model(torch.ones(4, 3)).sum().backward()
    opt.step()
    sched.step()


def test_resume_restores_model_optimiser_schedule_and_state(tmp_path: Path):
    model, opt, sched = make()
    step(model, opt, sched)
    save_checkpoint(tmp_path / "last.pt", model, opt, sched, {"epoch": 1}, torch_rng=torch.get_rng_state())
    again = make()
    assert resume_checkpoint(tmp_path / "nothing.pt", *again) is None
    ck = resume_checkpoint(tmp_path / "last.pt", *again)
    assert ck["state"] == {"epoch": 1} and "torch_rng" in ck
    torch.testing.assert_close(again[0].weight, model.weight)
    assert again[2].get_last_lr() == sched.get_last_lr()
    # Both continue identically: the optimiser moments came back too.
    step(model, opt, sched)
    step(*again)
    torch.testing.assert_close(again[0].weight, model.weight)


def test_a_crash_while_saving_keeps_the_previous_epoch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    model, opt, sched = make()
    save_checkpoint(tmp_path / "last.pt", model, opt, sched, {"epoch": 1})
    real_save = torch.save

    def dies_half_way(obj, path):
        Path(path).write_bytes(b"truncated")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "last.pt", model, opt, sched, {"epoch": 2})
    monkeypatch.setattr(torch, "save", real_save)
    assert resume_checkpoint(tmp_path / "last.pt", *make())["state"] == {"epoch": 1}


def test_resume_says_where_it_resumed_only_through_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    model, opt, sched = make()
    save_checkpoint(tmp_path / "last.pt", model, opt, sched, {"epoch": 3})
    assert resume_checkpoint(tmp_path / "last.pt", *make()) is not None
    assert capsys.readouterr().out == ""  # the package itself prints nothing
    lines: list[str] = []
    resume_checkpoint(tmp_path / "last.pt", *make(), log=lines.append)
    assert lines == [f"resumed after epoch 3 from {tmp_path / 'last.pt'}"]
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left beside it
