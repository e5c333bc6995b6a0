"""Run independent simulation tasks locally (joblib) or on a Dask cluster, reproducibly.

Every task gets its own ``numpy.random.Generator`` from ``SeedSequence(seed).spawn(n_tasks)`` in
task order, so results depend on the seed only: the same for 1 or 16 workers, joblib or Dask.

>>> run_tasks(_demo, [1, 2, 3], seed=0) == run_tasks(_demo, [1, 2, 3], seed=0, n_jobs=2)
True
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from crt_widgets.core.seeds import check_seed

# seconds to wait for a Dask scheduler named by its address (distributed's own default is 30)
DASK_CONNECT_TIMEOUT = 5


def spawn_generators(seed: int | np.random.SeedSequence | None, n: int) -> list[np.random.SeedSequence]:
    """``n`` independent child seed sequences of ``seed`` (picklable; make Generators from them)."""
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(check_seed(seed))
    return root.spawn(n)


def run_tasks(
    func: Callable[[Any, np.random.Generator], Any],
    tasks: Sequence[Any],
    *,
    seed: int | np.random.SeedSequence | None,
    n_jobs: int = 1,
    client: Any = None,
    progress: bool = False,
    desc: str = "simulating",
) -> list:
    """``[func(task, rng_i) for i, task in enumerate(tasks)]`` in parallel, results in task order.

    ``n_jobs``: joblib workers (1 runs in this process; -1 all cores). ``client``: a
    ``dask.distributed.Client`` or a scheduler address (``"tcp://host:8786"``, given up on after
    ``DASK_CONNECT_TIMEOUT`` seconds with a ValueError); when given, the tasks run on that cluster
    instead. ``progress`` shows a tqdm bar (terminal or notebook).
    """
    if seed is None:
        raise ValueError("seed is required so that simulations are reproducible")
    # joblib reads -2 as "all cores but one"; 0 and fractions mean nothing (its own message names no argument)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0:
        raise ValueError(f"n_jobs: give 1 or more workers, or -1 for every core (-2 for all but one); got {n_jobs!r}")
    seeds = spawn_generators(seed, len(tasks))
    bar = _progress_bar(progress, len(tasks), desc)
    try:
        if client is not None:
            return _run_dask(func, tasks, seeds, client, bar)
        if n_jobs == 1:
            out = []
            for task, ss in zip(tasks, seeds):
                out.append(_call(func, task, ss))
                bar.update(1)
            return out
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_call)(func, task, ss) for task, ss in zip(tasks, seeds))
        out = []
        for result in results:
            out.append(result)
            bar.update(1)
        return out
    finally:
        bar.close()


def _call(func, task, seed_sequence):
    return func(task, np.random.default_rng(seed_sequence))


def connect_dask(address: str, timeout: float | None = None):
    """A ``dask.distributed.Client`` of the scheduler at ``address``; a ValueError naming the address when
    Dask is not installed or nothing answers there within ``timeout`` seconds (``DASK_CONNECT_TIMEOUT``)."""
    timeout = DASK_CONNECT_TIMEOUT if timeout is None else timeout
    try:
        from distributed import Client
    except ImportError:
        raise ValueError("client: running on a Dask cluster needs the dask extra "
                         "(pip install 'crt-widgets[dask]')") from None
    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise ValueError(f"client: no Dask scheduler answered at {address} within {timeout:g} s ({exc}); "
                         "is it running, and is the address right?") from None


def _run_dask(func, tasks, seeds, client, bar) -> list:
    from distributed import as_completed

    own = isinstance(client, str)
    client = connect_dask(client) if own else client
    try:
        futures = client.map(_call, [func] * len(tasks), list(tasks), list(seeds), pure=False)
        for _ in as_completed(futures):
            bar.update(1)
        return client.gather(futures)
    finally:
        if own:
            client.close()


def _progress_bar(show: bool, total: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not show)


def _demo(task, rng):  # used by the module doctest
    return float(task + rng.random())
