"""`emollama.parallel.map_workers` on spawned processes: a worker that dies costs its item, not the run."""

from __future__ import annotations

import os

from emollama.parallel import map_workers


def _init(config: str) -> str:
    return config


def _run(state: str, item: int) -> tuple[str, int]:
    if item == 3:
        os._exit(1)  # a native crash / OOM kill in the middle of one item
    return state, item * 10


def _crashed(item: int, exc: BaseException) -> tuple[str, int]:
    return f"crashed: {type(exc).__name__}", item


def test_a_dead_worker_loses_only_its_own_item() -> None:
    results = list(map_workers(_run, list(range(8)), init=_init, config="ok", workers=2, crashed=_crashed))
    done = sorted(v for s, v in results if s == "ok")
    assert done == [0, 10, 20, 40, 50, 60, 70]  # every innocent item finished, on a fresh pool if needed
    assert [(s, v) for s, v in results if s != "ok"] == [("crashed: BrokenProcessPool", 3)]


def test_a_dead_ray_actor_loses_only_its_own_item() -> None:
    import pytest

    ray = pytest.importorskip("ray")
    try:
        results = list(map_workers(_run, list(range(6)), init=_init, config="ok", workers=2,
                                   ray_address="local", crashed=_crashed))
    finally:
        ray.shutdown()
    assert sorted(v for s, v in results if s == "ok") == [0, 10, 20, 40, 50]
    assert [(s, v) for s, v in results if s != "ok"] == [("crashed: ActorDiedError", 3)]
