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
        yield from _ray(run, items, init, config, workers, ray_address, crashed)
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
    """Items on a spawned process pool; a worker that dies costs its own item, not the run.

    A dead worker breaks the whole :class:`ProcessPoolExecutor`: every unfinished item then fails
    with ``BrokenProcessPool``, though most were innocent. The culprit is among the first
    ``workers + 1`` unfinished items (a pool hands out work in submission order and queues one
    item ahead); each of those is retried alone in a one-worker pool, and the rest go to a fresh
    pool. Only an item that kills its own pool is recorded as crashed.
    """
    from concurrent.futures.process import BrokenProcessPool

    pending = list(items)
    while pending:
        pool = _pool(workers, init, config)
        broken: list[tuple[int, T, BaseException]] = []
        try:
            futures = {pool.submit(_process_run, run, item): (i, item) for i, item in enumerate(pending)}
            for fut in as_completed(futures):
                i, item = futures[fut]
                try:
                    result = fut.result()
                except BrokenProcessPool as exc:
                    broken.append((i, item, exc))
                    continue
                except Exception as exc:  # noqa: BLE001 - one item's own failure in a worker: record it, go on
                    result = crashed(item, exc)
                yield result
        finally:
            # Ctrl-C or a caller that stops early: drop the queued items instead of finishing them all.
            pool.shutdown(wait=True, cancel_futures=True)
        broken.sort(key=lambda b: b[0])
        for _, item, _exc in broken[: workers + 1]:
            yield _alone(run, item, init, config, crashed)
        pending = [item for _, item, _ in broken[workers + 1 :]]


def _pool(workers: int, init: Callable[[Any], Any], config: Any) -> ProcessPoolExecutor:
    import multiprocessing as mp

    # "spawn": forking a process that already holds MediaPipe/torch threads can deadlock.
    return ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                               initializer=_process_init, initargs=(init, config))


def _alone(run: Callable[[S, T], R], item: T, init: Callable[[C], S], config: C,
           crashed: Callable[[T, BaseException], R]) -> R:
    """One suspect item in its own one-worker pool: its result, or ``crashed`` if it kills that pool too."""
    pool = _pool(1, init, config)
    try:
        return pool.submit(_process_run, run, item).result()
    except Exception as exc:  # noqa: BLE001 - BrokenProcessPool (it was the culprit) or its own error
        return crashed(item, exc)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# --- Ray ------------------------------------------------------------------------------------------------
def _ray(run: Callable[[S, T], R], items: Sequence[T], init: Callable[[C], S], config: C, workers: int,
         address: str, crashed: Callable[[T, BaseException], R]) -> Iterator[R]:
    try:
        import ray
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

    # Not ActorPool: it cannot go on after an actor dies. Here a dead actor (out of memory, a native
    # crash) costs its item, recorded through ``crashed``, and is replaced by a fresh one.
    from ray.exceptions import RayActorError

    actors = [Worker.remote(init, config) for _ in range(max(1, workers))]
    idle, queue = list(actors), list(items)
    in_flight: dict[Any, tuple[Any, T]] = {}
    try:
        while queue or in_flight:
            while idle and queue:
                actor, item = idle.pop(), queue.pop(0)
                in_flight[actor.run.remote(run, item)] = (actor, item)
            (ref,), _ = ray.wait(list(in_flight), num_returns=1)
            actor, item = in_flight.pop(ref)
            try:
                result = ray.get(ref)
            except RayActorError as exc:
                ray.kill(actor)
                actor = Worker.remote(init, config)
                actors.append(actor)
                result = crashed(item, exc)
            idle.append(actor)
            yield result
    finally:
        for actor in actors:
            ray.kill(actor)
