"""Benchmark jobs on a Dask cluster: a local one of worker processes, or a running one.

The client submits one Dask task per job and writes each job's rows as it completes, so
only one process ever writes the CSV. A job that raises is retried once (`retries=1`); a
job whose worker dies (killed, out of memory) is given to another worker once (the
scheduler's `allowed-failures`, set to 1 for a local cluster) and then reported. A failed
job never stops the others.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from tqdm.auto import tqdm

__all__ = ["run_on_dask"]


def run_on_dask(
    jobs: Sequence[Any],
    run_job: Callable[[Any], List[Dict[str, Any]]],
    on_rows: Callable[[List[Dict[str, Any]]], None],
    workers: Optional[int] = None,
    scheduler: Optional[str] = None,
    progress: bool = True,
) -> List[Tuple[Any, str]]:
    """Run `run_job(job)` for every job on Dask and hand each job's rows to `on_rows`.

    Arguments:
        jobs: The jobs (picklable).
        run_job: The job function (picklable; it runs on the workers).
        on_rows: Called in this process with the rows of each job that completes.
        workers: Number of worker processes of a local cluster (one thread each).
        scheduler: Address of a running scheduler (e.g. `tcp://10.0.0.5:8786`), instead
            of a local cluster; its workers need this package and the benchmark folder.
        progress: Whether to show a progress bar.

    Returns:
        The failed jobs with their errors.
    """
    import dask
    from distributed import Client, LocalCluster, as_completed

    if (workers is None) == (scheduler is None):
        raise ValueError("Give either workers (a local cluster) or scheduler (an address).")
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        if scheduler is not None:
            cluster = None
            client = Client(scheduler)
        else:
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            )
            client = Client(cluster)
        try:
            run_id = uuid.uuid4().hex[:8]  # keys unique to this run on a shared scheduler
            futures = {
                client.submit(
                    run_job, job, retries=1, pure=False, key=f"job-{run_id}-{i}-{job}"
                ): job
                for i, job in enumerate(jobs)
            }
            failures = []
            bar = tqdm(total=len(futures), disable=not progress, desc="benchmark", unit="job")
            for future in as_completed(futures):
                job = futures[future]
                if future.status == "finished":
                    on_rows(future.result())
                elif future.status == "cancelled":
                    failures.append((job, "cancelled (the cluster went away)"))
                else:
                    error = future.exception()
                    failures.append((job, f"{type(error).__name__}: {error}"))
                bar.update(1)
            bar.close()
            return failures
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
