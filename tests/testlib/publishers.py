"""Child-process entry points for the concurrency tests (spawned by multiprocessing)."""

from __future__ import annotations

from pathlib import Path

from spoold.testing.dists import make_distribution


def publish_worker(storage_url: str, jobs: list[tuple[str, str]], start: object,
                   threads: int = 1, batched: bool = False) -> None:
    """Child-process entry point for concurrency tests: publish ``(name, version)`` jobs.

    ``start`` is a multiprocessing Event every child waits on, so all begin together;
    ``threads`` publish at once in each child (as a worker's job slots do); ``batched``:
    each publish in a storage batch, its end the durability barrier, as the worker runs it.
    """
    import tempfile

    from spoold.index import publish as bare_publish
    from spoold.storage import open_storage

    storage = open_storage(storage_url)

    def publish(storage: object, dist: object, path: Path) -> None:
        if not batched:
            bare_publish(storage, dist, path)  # type: ignore[arg-type]
            return
        with storage.batch():  # type: ignore[attr-defined]
            bare_publish(storage, dist, path)  # type: ignore[arg-type]

    with tempfile.TemporaryDirectory() as tmp:
        prepared = [make_distribution(n, v, Path(tmp)) for n, v in jobs]
        start.wait(60)  # type: ignore[attr-defined]
        if threads == 1:
            for dist, path in prepared:
                publish(storage, dist, path)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads) as pool:
            for future in [pool.submit(publish, storage, d, p) for d, p in prepared]:
                future.result()
