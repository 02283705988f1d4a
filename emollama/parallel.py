"""Map one function over many items: in this process, in worker processes, or on Ray actors.

Why one helper: ``annotate`` and ``features`` both load heavy models once per worker (perception,
encoders, an LLM client) and then run them on many clips. The three ways to do that — a plain
loop, a :class:`~concurrent.futures.ProcessPoolExecutor` whose initializer loads the models, and a
pool of Ray actors that each load them once — are written here once; callers supply

* ``init(config) -> state``: builds a worker's models from a plain, picklable ``config``;
* ``run(state, item) -> result``: one item with those models.

Both must be module-level functions (they travel to worker processes and Ray actors by
reference). Results come back to the caller, which alone writes files, so two workers never race
on one path. With Ray the paths inside the items must be readable from every node (shared storage).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

from emollama.errors import InputError

T = TypeVar("T")
R = TypeVar("R")
C = TypeVar("C")
S = TypeVar("S")

__all__ = ["map_workers"]


def map_workers(run: Callable[[S, T], R], items: Sequence[T], *, init: Callable[[C], S], config: C,
                workers: int = 1, ray_address: str | None = None, state: S | None = None,
                crashed: Callable[[T, BaseException], R]) -> Iterator[R]:
    """Yield ``run(state, item)`` for every item, in completion order.

    ``workers > 1`` runs that many spawned processes; ``ray_address`` (``auto``, ``ray://host:port``
    or ``local``) runs ``max(1, workers)`` Ray actors instead. ``state`` is used by the serial path
    instead of ``init(config)`` (a caller that already holds the models). ``crashed(item, exc)``
    turns a worker that died under an item (out of memory, a native crash) into that item's result,
    so one bad clip never ends the run.
    """
    if ray_address:
        yield from _ray(run, items, init, config, workers, ray_address)
    elif workers > 1:
        yield from _processes(run, items, init, config, workers, crashed)
    else:
        held = state if state is not None else init(config)
        for item in items:
            yield run(held, item)


# --- worker processes -----------------------------------------------------------------------------------
_STATE: dict[str, Any] = {}


def _process_init(init: Callable[[Any], Any], config: Any) -> None:
    _STATE["state"] = init(config)


def _process_run(run: Callable[[Any, Any], Any], item: Any) -> Any:
    return run(_STATE["state"], item)


def _processes(run: Callable[[S, T], R], items: Sequence[T], init: Callable[[C], S], config: C, workers: int,
               crashed: Callable[[T, BaseException], R]) -> Iterator[R]:
    import multiprocessing as mp

    # "spawn": forking a process that already holds MediaPipe/torch threads can deadlock.
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                               initializer=_process_init, initargs=(init, config))
    try:
        futures = {pool.submit(_process_run, run, item): item for item in items}
        for fut in as_completed(futures):
            try:
                result = fut.result()
            except Exception as exc:  # noqa: BLE001 - a worker died (OOM, native crash): record it, go on
                result = crashed(futures[fut], exc)
            yield result
    finally:
        # Ctrl-C or a caller that stops early: drop the queued items instead of finishing them all.
        pool.shutdown(wait=True, cancel_futures=True)


# --- Ray ------------------------------------------------------------------------------------------------
def _ray(run: Callable[[S, T], R], items: Sequence[T], init: Callable[[C], S], config: C, workers: int,
         address: str) -> Iterator[R]:
    try:
        import ray
        from ray.util import ActorPool
    except ImportError:
        raise InputError("--ray-address needs Ray: pip install 'ray[default]'") from None
    if not ray.is_initialized():
        if address == "local":
            ray.init(include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)

    @ray.remote
    class Worker:
        def __init__(self, init_fn: Callable[[C], S], cfg: C) -> None:
            self.state = init_fn(cfg)

        def run(self, fn: Callable[[S, T], R], item: T) -> R:
            return fn(self.state, item)

    actors = [Worker.remote(init, config) for _ in range(max(1, workers))]
    pool = ActorPool(actors)
    try:
        yield from pool.map_unordered(lambda actor, item: actor.run.remote(run, item), list(items))
    finally:
        for actor in actors:
            ray.kill(actor)
